using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

/// <summary>Bm25Index's dynamic pruning, and a search split in two halves of the documents, return what scoring every posting in one pass returns.</summary>
public sealed class Bm25PruningTests
{
    /// <summary>Allows every third document: a filter that must act before the top-k cut.</summary>
    private readonly struct EveryThird : IDocFilter
    {
        public bool Allows(int doc) => doc % 3 == 0;
    }

    [Theory]
    [InlineData(5, false, false, false)]
    [InlineData(10, false, false, false)]
    [InlineData(10, true, false, false)]
    [InlineData(100, false, false, false)]
    [InlineData(10, false, true, false)]
    [InlineData(100, true, true, false)]
    [InlineData(10, false, false, true)]
    [InlineData(100, true, true, true)]
    public void PrunedTopK_EqualsExhaustiveScoring_OnARandomCorpus(int k, bool filtered, bool split, bool compactAndReload)
    {
        // Zipf-like words so that lists range from a handful of documents to most of the corpus.
        var random = new Random(11);
        var words = Enumerable.Range(0, 400).Select(i => "w" + ToLetters(i)).ToArray();
        string Word() => words[(int)Math.Min(words.Length - 1, Math.Floor(Math.Pow(random.NextDouble(), 3) * words.Length))];
        // split: every search is cut into two halves of the document range searched on two threads, then merged.
        var index = new Bm25Index(new TextAnalyzer(stem: false), 0.6f, 0.3f) { TypoWeight = 0, ParallelPostings = split ? 1 : 0, SplitEvenWhenBusy = split };
        for (var doc = 0; doc < 6_000; doc++)
        {
            index.Add(doc, string.Join(' ', Enumerable.Range(0, random.Next(3, 25)).Select(_ => Word())));
        }
        for (var doc = 0; doc < 6_000; doc += 7)
        {
            index.Remove(doc); // removed documents must not count in either path
        }
        if (compactAndReload)
        {
            // Compaction and loading recompute every list's and block's bounds from the live documents.
            for (var doc = 1; doc < 6_000; doc += 4)
            {
                index.Remove(doc);
            }
            index.Compact(minDeadShare: 0).Should().BeGreaterThan(0);
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                index.Write(writer);
            }
            stream.Position = 0;
            using var reader = new BinaryReader(stream);
            index = Bm25Index.Read(reader, new TextAnalyzer(stem: false), 0.6f, 0.3f);
            (index.TypoWeight, index.ParallelPostings, index.SplitEvenWhenBusy) = (0, split ? 1 : 0, split);
        }

        var (pruned, splitSearches) = (0, 0);
        for (var q = 0; q < 300; q++)
        {
            var query = string.Join(' ', Enumerable.Range(0, random.Next(2, 7)).Select(_ => Word()));
            var exhaustive = Run(index, query, k, filtered, pruning: false, split: false);
            var fast = Run(index, query, k, filtered, pruning: true, split);
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
            splitSearches += index.LastSearchSplit ? 1 : 0;
        }
        if (k <= index.MaxScoreMaxK)
        {
            pruned.Should().BeGreaterThan(30, "the corpus and queries must exercise the pruned path");
        }
        else
        {
            pruned.Should().Be(0, "a large k scores every posting");
        }
        splitSearches.Should().Be(split ? 300 : 0);
    }

    private static ScoredDoc[] Run(Bm25Index index, string query, int k, bool filtered, bool pruning, bool split)
    {
        (index.DynamicPruning, index.ParallelPostings) = (pruning, split ? 1 : 0);
        var results = new ScoredDoc[k];
        var count = filtered ? index.Search(query, results, new EveryThird()) : index.Search(query, results, new AllDocs());
        return results[..count];
    }

    private static string ToLetters(int i) => i < 26 ? ((char)('a' + i)).ToString() : ToLetters((i / 26) - 1) + (char)('a' + (i % 26));
}
