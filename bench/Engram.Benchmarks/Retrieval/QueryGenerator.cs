using Engram.Core.Indexing.Text;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// Keyword queries of 2 to 6 words as someone would type them about a memory: the words of a random
/// memory of the corpus (so they follow the corpus's own frequencies, common and rare), and in three
/// queries out of ten one rare vocabulary word as well, which may match few memories or none.
/// </summary>
public static class QueryGenerator
{
    /// <summary>Rare words are drawn uniformly from this rank on (the Zipf tail).</summary>
    private const int RareFrom = 5_000;

    public static List<string[]> Generate(CorpusGenerator corpus, long corpusSize, int count, int seed)
    {
        var queries = new List<string[]>(count);
        for (var q = 0; q < count; q++)
        {
            var random = SplitMix.For(seed ^ 0x7F4A7C15, q);
            var wanted = 2 + random.Next(5);
            var words = ContentWords(corpus.Text(random.NextInt64(corpusSize)));
            var picked = new List<string>(wanted);
            while (picked.Count < wanted && words.Count > 0)
            {
                var i = random.Next(words.Count);
                picked.Add(words[i]);
                words.RemoveAt(i);
            }
            if (random.Next(10) < 3)
            {
                var vocabulary = corpus.Vocabulary;
                var rare = vocabulary[RareFrom + random.Next(vocabulary.Count - RareFrom)];
                if (!picked.Contains(rare))
                {
                    picked[^1] = rare;
                }
            }
            queries.Add([.. picked]);
        }
        return queries;
    }

    /// <summary>The distinct lowercase words of <paramref name="text"/>, stop words and words under three letters left out.</summary>
    private static List<string> ContentWords(string text) =>
        text.Split([' ', '.', ','], StringSplitOptions.RemoveEmptyEntries)
            .Select(w => w.ToLowerInvariant())
            .Where(w => w.Length >= 3 && !StopWords.Contains(w))
            .Distinct(StringComparer.Ordinal)
            .ToList();
}
