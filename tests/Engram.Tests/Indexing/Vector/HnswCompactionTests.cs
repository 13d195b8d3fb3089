using System.Collections.Concurrent;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;

namespace Engram.Tests.Indexing.Vector;

/// <summary>
/// <see cref="HnswIndex.Compact"/>: tombstones are reclaimed by rebuilding the graph from the live rows, with searches
/// and writes going on meanwhile, and the result answers like a graph built from the live set.
/// </summary>
public sealed class HnswCompactionTests
{
    private const int Dimensions = 32;
    private const int K = 10;

    /// <summary>Threshold 0: every search walks the graph, so the graph (not the exact scan) is what is tested.</summary>
    private static readonly HnswOptions GraphOnly = new() { M = 12, EfConstruction = 64, EfSearch = 64, ExactSearchThreshold = 0 };

    [Theory]
    [InlineData(VectorQuantization.None)]
    [InlineData(VectorQuantization.Int8)]
    public void Compaction_DropsEveryTombstone_AndKeepsRecallAgainstExactSearchOfTheLiveSet(VectorQuantization quantization)
    {
        var data = VectorTestData.Clustered(5_000, Dimensions, clusters: 20, seed: 21);
        var index = new HnswIndex(Dimensions, GraphOnly with { Quantization = quantization });
        for (var doc = 0; doc < data.Length; doc++)
        {
            index.Add(doc, data[doc]);
        }
        var live = new HashSet<int>(Enumerable.Range(0, data.Length));
        for (var doc = 0; doc < data.Length; doc += 5)
        {
            index.Remove(doc);
            index.Remove(doc + 1);
            live.Remove(doc);
            live.Remove(doc + 1);
        }
        index.Tombstones.Should().Be(2_000);
        index.NeedsCompaction(0.5).Should().BeFalse("40 % is below a 50 % threshold");
        index.Compact(0.5).Should().Be(0);

        index.Compact(0.2).Should().Be(2_000);
        index.Tombstones.Should().Be(0);
        index.NodeCount.Should().Be(live.Count);
        index.Count.Should().Be(live.Count);
        index.Compactions.Should().Be(1);
        foreach (var doc in Enumerable.Range(0, data.Length))
        {
            index.Contains(doc).Should().Be(live.Contains(doc));
        }

        // As good as a graph built from the live set alone (the same rows, in the same order).
        var queries = VectorTestData.Clustered(100, Dimensions, clusters: 20, seed: 22);
        var built = new HnswIndex(Dimensions, GraphOnly with { Quantization = quantization });
        foreach (var doc in live.Order())
        {
            built.Add(doc, data[doc]);
        }
        var recall = Recall(index, data, live, queries, out var returnedRemoved);
        returnedRemoved.Should().BeFalse();
        recall.Should().BeGreaterThanOrEqualTo(Recall(built, data, live, queries, out _) - 0.02).And.BeGreaterThan(0.8);

        // The compacted graph takes new documents and removals like any other.
        index.Add(data.Length, data[0]);
        index.Remove(3);
        index.Contains(data.Length).Should().BeTrue();
        index.Contains(3).Should().BeFalse();
    }

    [Fact]
    public void ManyChurnCycles_KeepTheNodeCountBounded_AndTheAnswersRight()
    {
        var data = VectorTestData.Clustered(12_000, Dimensions, clusters: 20, seed: 23);
        var index = new HnswIndex(Dimensions, GraphOnly);
        var live = new Queue<int>();
        var next = 0;
        for (; next < 1_000; next++)
        {
            index.Add(next, data[next]);
            live.Enqueue(next);
        }
        var maxNodes = 0;
        for (var cycle = 0; cycle < 50; cycle++)
        {
            // 200 new memories, the 200 oldest expire: the live set stays at 1,000 while 11,000 documents pass through.
            for (var i = 0; i < 200; i++, next++)
            {
                index.Add(next, data[next]);
                live.Enqueue(next);
                index.Remove(live.Dequeue());
            }
            index.Compact(0.2);
            maxNodes = Math.Max(maxNodes, index.NodeCount);
        }
        index.Count.Should().Be(1_000);
        index.Compactions.Should().BeGreaterThan(10);
        maxNodes.Should().BeLessThanOrEqualTo(1_250, "compaction keeps tombstones under 20 % of the nodes");
        var recall = Recall(index, data, [.. live], VectorTestData.Clustered(50, Dimensions, clusters: 20, seed: 24), out var returnedRemoved);
        returnedRemoved.Should().BeFalse();
        recall.Should().BeGreaterThan(0.95);
    }

    [Fact]
    public async Task SearchesAndWrites_DuringACompaction_NeverFail_NorReturnARemovedDocument()
    {
        var data = VectorTestData.Clustered(9_000, Dimensions, clusters: 20, seed: 25);
        var index = new HnswIndex(Dimensions, GraphOnly);
        for (var doc = 0; doc < 6_000; doc++)
        {
            index.Add(doc, data[doc]);
        }
        long clock = 0;
        var removedAt = new ConcurrentDictionary<int, long>();
        void Remove(int doc)
        {
            index.Remove(doc);
            removedAt.TryAdd(doc, Interlocked.Increment(ref clock)); // stamped after the (first) removal returned
        }
        for (var doc = 0; doc < 6_000; doc += 3)
        {
            Remove(doc);
        }

        using var stop = new CancellationTokenSource();
        var failures = new ConcurrentQueue<string>();
        var searches = 0;
        var searchers = Enumerable.Range(0, 2).Select(s => Task.Run(() =>
        {
            var results = new ScoredDoc[K];
            var random = new Random(s);
            while (!stop.IsCancellationRequested)
            {
                var started = Interlocked.Read(ref clock);
                var count = index.Search(data[random.Next(9_000)], results, new AllDocs());
                if (count != K)
                {
                    failures.Enqueue($"a search returned {count} results");
                }
                foreach (var hit in results.AsSpan(0, count))
                {
                    if (removedAt.TryGetValue(hit.Doc, out var at) && at <= started)
                    {
                        failures.Enqueue($"document {hit.Doc} was returned after its removal");
                    }
                }
                Interlocked.Increment(ref searches);
            }
        })).ToArray();
        var writer = Task.Run(() =>
        {
            // New documents and removals while the fresh graph is built: the journal carries them over.
            for (var doc = 6_000; doc < 9_000 && !stop.IsCancellationRequested; doc++)
            {
                index.Add(doc, data[doc]);
                if (doc % 4 == 0)
                {
                    Remove(doc - 2_999); // an old document, live or already removed
                    Remove(doc - 100); // a document added during the compaction
                }
            }
        });

        // The searchers run before the compaction starts: on a loaded machine their tasks could otherwise be scheduled
        // only after it ended (this test once saw 0 searches).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Volatile.Read(ref searches) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(1);
        }
        var dropped = await Task.Run(() => index.Compact(0.2));
        await writer.WaitAsync(TimeSpan.FromMinutes(5));
        await stop.CancelAsync();
        await Task.WhenAll(searchers);

        failures.Should().BeEmpty();
        searches.Should().BeGreaterThan(0);
        dropped.Should().BeGreaterThanOrEqualTo(2_000);
        index.Compactions.Should().Be(1);
        var expected = Enumerable.Range(0, 9_000).Where(doc => !removedAt.ContainsKey(doc)).ToHashSet();
        index.Count.Should().Be(expected.Count);
        for (var doc = 0; doc < 9_000; doc++)
        {
            index.Contains(doc).Should().Be(expected.Contains(doc), $"document {doc}");
        }
        index.NodeCount.Should().BeLessThanOrEqualTo(9_000 - 2_000, "the tombstones before the compaction are gone");
        // The interleaving (and so the graph) differs from run to run: 2,000 samples and a margin of 0.05 keep
        // sampling noise (a standard deviation of ~0.01 for the difference) from failing a sound graph.
        var queries = VectorTestData.Clustered(200, Dimensions, clusters: 20, seed: 26);
        Recall(index, data, expected, queries, out var returnedRemoved).Should().BeGreaterThanOrEqualTo(BuiltFromLiveRecall(data, expected, queries) - 0.05);
        returnedRemoved.Should().BeFalse();
    }

    [Fact]
    public void ACancelledCompaction_LeavesTheIndexAsItWas()
    {
        var data = VectorTestData.Clustered(2_000, Dimensions, clusters: 10, seed: 27);
        var index = new HnswIndex(Dimensions, GraphOnly);
        for (var doc = 0; doc < data.Length; doc++)
        {
            index.Add(doc, data[doc]);
        }
        for (var doc = 0; doc < data.Length; doc += 2)
        {
            index.Remove(doc);
        }
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var compact = () => index.Compact(0.2, ct: cancelled.Token);
        compact.Should().Throw<OperationCanceledException>();
        index.Tombstones.Should().Be(1_000);
        index.Count.Should().Be(1_000);
        index.Remove(1); // no journal is left behind to collect later writes
        index.Compact(0.2).Should().Be(1_001);
        index.NodeCount.Should().Be(999);
    }

    [Fact]
    public void ASnapshotWrittenAfterACompaction_Loads_AndAnswersTheSame()
    {
        var data = VectorTestData.Clustered(3_000, Dimensions, clusters: 10, seed: 28);
        var index = new HnswIndex(Dimensions, GraphOnly);
        for (var doc = 0; doc < data.Length; doc++)
        {
            index.Add(doc, data[doc]);
        }
        for (var doc = 0; doc < data.Length; doc += 2)
        {
            index.Remove(doc);
        }
        index.Compact(0.2).Should().Be(1_500);
        using var stream = new MemoryStream();
        index.Save(stream);
        stream.Position = 0;
        var loaded = HnswIndex.Load(stream);
        loaded.Count.Should().Be(1_500);
        loaded.Tombstones.Should().Be(0);
        var a = new ScoredDoc[K];
        var b = new ScoredDoc[K];
        foreach (var query in data.Take(50))
        {
            index.Search(query, a, new AllDocs()).Should().Be(K);
            loaded.Search(query, b, new AllDocs()).Should().Be(K);
            b.Should().Equal(a);
        }
    }

    /// <summary>Recall@K of a graph built from <paramref name="live"/> alone: what a compaction should match.</summary>
    private static double BuiltFromLiveRecall(float[][] data, IReadOnlyCollection<int> live, float[][] queries)
    {
        var built = new HnswIndex(Dimensions, GraphOnly);
        foreach (var doc in live.Order())
        {
            built.Add(doc, data[doc]);
        }
        return Recall(built, data, live, queries, out _);
    }

    /// <summary>Recall@K of the graph against an exact scan of <paramref name="live"/>; flags any result outside it.</summary>
    private static double Recall(HnswIndex index, float[][] data, IReadOnlyCollection<int> live, float[][] queries, out bool returnedRemoved)
    {
        returnedRemoved = false;
        var found = 0;
        var results = new ScoredDoc[K];
        foreach (var query in queries)
        {
            var exact = live.OrderByDescending(doc => Dot(query, data[doc])).Take(K).ToHashSet();
            var count = index.Search(query, results, new AllDocs());
            count.Should().Be(K);
            foreach (var hit in results.AsSpan(0, count))
            {
                found += exact.Contains(hit.Doc) ? 1 : 0;
                returnedRemoved |= !live.Contains(hit.Doc);
            }
        }
        return (double)found / (queries.Length * K);
    }

    private static float Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
}
