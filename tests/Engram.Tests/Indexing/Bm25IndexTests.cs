using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

public sealed class Bm25IndexTests
{
    private static readonly string[] Corpus =
    [
        "Alice adopted a dog named Rex last spring",
        "Bob painted the kitchen blue and the hallway green",
        "The dog park opens at seven every morning",
        "Alice and Bob went hiking in the mountains",
        "Rex the dog loves chasing tennis balls",
        "Quarterly revenue grew five percent",
        "Painting classes start next week at the community center",
        "A dog, a dog, a dog: dogs everywhere",
    ];

    [Fact]
    public void Search_MatchesABruteForceOracle()
    {
        var index = new Bm25Index();
        for (var i = 0; i < Corpus.Length; i++)
        {
            index.Add(i, Corpus[i]);
        }
        foreach (var query in new[] { "dog", "alice dog", "painting kitchen", "revenue", "Rex tennis balls", "hiking mountains bob" })
        {
            var expected = Oracle(Corpus.Select((text, doc) => (doc, text)).ToList(), query, 1.2, 0.75);
            var results = new ScoredDoc[Corpus.Length];
            var count = index.Search(query, results, new AllDocs());
            results.Take(count).Select(r => r.Doc).Should().Equal(expected.Select(e => e.Doc), query);
            for (var i = 0; i < count; i++)
            {
                results[i].Score.Should().BeApproximately((float)expected[i].Score, 1e-4f, query);
            }
        }
    }

    [Fact]
    public void Remove_AndReplace_UpdateScoresAndFrequencies()
    {
        var index = new Bm25Index();
        for (var i = 0; i < Corpus.Length; i++)
        {
            index.Add(i, Corpus[i]);
        }
        index.Remove(4);
        index.Remove(7);
        index.Add(8, "completely different words now"); // a new version of doc 7 gets a fresh number
        var live = Corpus.Select((text, doc) => (doc, text)).Where(d => d.doc is not (4 or 7)).Append((8, "completely different words now")).ToList();
        var expected = Oracle(live, "dog rex", 1.2, 0.75);
        var results = new ScoredDoc[10];
        var count = index.Search("dog rex", results, new AllDocs());
        results.Take(count).Select(r => r.Doc).Should().Equal(expected.Select(e => e.Doc));
        results[0].Score.Should().BeApproximately((float)expected[0].Score, 1e-4f);
        index.Count.Should().Be(7);

        index.Compact(minDeadShare: 0).Should().BeGreaterThan(0);
        index.Search("dog rex", results, new AllDocs()).Should().Be(count, "compaction changes no result");
        results[0].Score.Should().BeApproximately((float)expected[0].Score, 1e-4f);
    }

    [Fact]
    public void Search_AppliesTheFilterBeforeTheTopKCut()
    {
        var index = new Bm25Index();
        for (var i = 0; i < 1000; i++)
        {
            index.Add(i, i % 100 == 0 ? "rare dog" : "dog dog dog");
        }
        var results = new ScoredDoc[5];
        var count = index.Search("dog", results, new EveryHundredth());
        count.Should().Be(5, "k matching documents exist, so k come back even though better unfiltered ones exist");
        results.Take(count).Should().OnlyContain(r => r.Doc % 100 == 0);
    }

    [Fact]
    public void Add_RefusesAReusedNumber()
    {
        var index = new Bm25Index();
        index.Add(3, "first");
        index.Remove(3);
        var reuse = () => index.Add(3, "second");
        reuse.Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void Search_UnknownOrEmptyQuery_ReturnsNothing()
    {
        var index = new Bm25Index();
        index.Add(0, "hello world");
        var results = new ScoredDoc[3];
        index.Search("zebra", results, new AllDocs()).Should().Be(0);
        index.Search("the of and", results, new AllDocs()).Should().Be(0);
        index.Search("", results, new AllDocs()).Should().Be(0);
    }

    [Fact]
    public async Task ConcurrentSearchesDuringWrites_NeverThrowAndSeeCompleteDocuments()
    {
        var index = new Bm25Index();
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                index.Add(i, $"memory {i} about topic{i % 50} and dog");
                if (i % 7 == 0 && i > 0)
                {
                    index.Remove(i / 2);
                }
            }
        });
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            var results = new ScoredDoc[10];
            while (!writer.IsCompleted)
            {
                var count = index.Search("topic7 dog", results, new AllDocs());
                results.Take(count).All(r => float.IsFinite(r.Score) && r.Score > 0).Should().BeTrue();
            }
        })).ToList();
        await Task.WhenAll(readers.Append(writer));
    }

    private readonly struct EveryHundredth : IDocFilter
    {
        public bool Allows(int doc) => doc % 100 == 0;
    }

    /// <summary>Textbook BM25 over the whole corpus in doubles, sorted by score then doc.</summary>
    private static List<(int Doc, double Score)> Oracle(List<(int Doc, string Text)> docs, string query, double k1, double b)
    {
        var analyzer = TextAnalyzer.Default;
        var terms = docs.Select(d => (d.Doc, Terms: analyzer.Terms(d.Text))).ToList();
        var avg = terms.Average(t => (double)t.Terms.Count);
        var n = terms.Count;
        var queryTerms = analyzer.Terms(query);
        var scores = new List<(int, double)>();
        foreach (var (doc, docTerms) in terms)
        {
            double score = 0;
            foreach (var group in queryTerms.GroupBy(t => t))
            {
                var df = terms.Count(t => t.Terms.Contains(group.Key));
                if (df == 0)
                {
                    continue;
                }
                var idf = Math.Log(1 + ((n - df + 0.5) / (df + 0.5)));
                var tf = docTerms.Count(t => t == group.Key);
                score += group.Count() * idf * tf * (k1 + 1) / (tf + (k1 * (1 - b + (b * docTerms.Count / avg))));
            }
            if (score > 0)
            {
                scores.Add((doc, score));
            }
        }
        return scores.OrderByDescending(s => s.Item2).ThenBy(s => s.Item1).ToList();
    }
}
