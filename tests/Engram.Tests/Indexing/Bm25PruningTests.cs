using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

/// <summary>Bm25Index's dynamic pruning returns what scoring every posting returns.</summary>
public sealed class Bm25PruningTests
{
    /// <summary>Allows every third document: a filter that must act before the top-k cut.</summary>
    private readonly struct EveryThird : IDocFilter
    {
        public bool Allows(int doc) => doc % 3 == 0;
    }

    [Theory]
    [InlineData(5, false)]
    [InlineData(10, false)]
    [InlineData(10, true)]
    [InlineData(100, false)]
    public void PrunedTopK_EqualsExhaustiveScoring_OnARandomCorpus(int k, bool filtered)
    {
        // Zipf-like words so that lists range from a handful of documents to most of the corpus.
        var random = new Random(11);
        var words = Enumerable.Range(0, 400).Select(i => "w" + ToLetters(i)).ToArray();
        string Word() => words[(int)Math.Min(words.Length - 1, Math.Floor(Math.Pow(random.NextDouble(), 3) * words.Length))];
        var index = new Bm25Index(new TextAnalyzer(stem: false), 0.6f, 0.3f) { TypoWeight = 0 };
        for (var doc = 0; doc < 6_000; doc++)
        {
            index.Add(doc, string.Join(' ', Enumerable.Range(0, random.Next(3, 25)).Select(_ => Word())));
        }
        for (var doc = 0; doc < 6_000; doc += 7)
        {
            index.Remove(doc); // removed documents must not count in either path
        }

        var pruned = 0;
        for (var q = 0; q < 300; q++)
        {
            var query = string.Join(' ', Enumerable.Range(0, random.Next(2, 7)).Select(_ => Word()));
            var exhaustive = Run(index, query, k, filtered, pruning: false);
            var fast = Run(index, query, k, filtered, pruning: true);
            fast.Select(r => r.Score).Should().Equal(exhaustive.Select(r => r.Score), (a, b) => Math.Abs(a - b) <= 1e-5f * Math.Max(1, Math.Abs(b)), query);
            // Equal scores at the cut may keep different documents; everything above the cut is the same.
            if (exhaustive.Length > 0)
            {
                var cut = exhaustive[^1].Score;
                fast.Where(r => r.Score > cut + 1e-5f).Select(r => r.Doc).Should().BeEquivalentTo(exhaustive.Where(r => r.Score > cut + 1e-5f).Select(r => r.Doc), query);
            }
            if (filtered)
            {
                fast.Should().OnlyContain(r => r.Doc % 3 == 0);
            }
            pruned += index.LastSearchPruned ? 1 : 0;
        }
        pruned.Should().BeGreaterThan(30, "the corpus and queries must exercise the pruned path");
    }

    private static ScoredDoc[] Run(Bm25Index index, string query, int k, bool filtered, bool pruning)
    {
        index.DynamicPruning = pruning;
        var results = new ScoredDoc[k];
        var count = filtered ? index.Search(query, results, new EveryThird()) : index.Search(query, results, new AllDocs());
        return results[..count];
    }

    private static string ToLetters(int i) => i < 26 ? ((char)('a' + i)).ToString() : ToLetters((i / 26) - 1) + (char)('a' + (i % 26));
}
