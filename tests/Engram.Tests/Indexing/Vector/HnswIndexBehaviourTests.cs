using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;

namespace Engram.Tests.Indexing.Vector;

public sealed class HnswIndexBehaviourTests
{
    private const int Dimensions = 32;
    private const int K = 10;

    /// <summary>Threshold 0: every search below walks the graph, so the graph paths are what is tested.</summary>
    private static readonly HnswOptions GraphOnly = new() { M = 12, EfConstruction = 64, EfSearch = 48, ExactSearchThreshold = 0 };

    [Fact]
    public void RemovedDocuments_NeverComeBack()
    {
        var data = VectorTestData.Clustered(6_000, Dimensions, clusters: 20, seed: 11);
        var index = Build(data, GraphOnly);
        var removed = new HashSet<int>();
        for (var doc = 0; doc < data.Length; doc += 3)
        {
            index.Remove(doc);
            removed.Add(doc);
        }
        index.Remove(1_000_000); // unknown: no-op
        index.Count.Should().Be(data.Length - removed.Count);

        var results = new ScoredDoc[K];
        foreach (var doc in removed.Take(300))
        {
            // Querying with a removed vector itself: its own node is the closest match, and must not be returned.
            index.Search(data[doc], results, new AllDocs()).Should().Be(K);
            results.Select(r => r.Doc).Should().NotIntersectWith(removed);
        }
    }

    [Fact]
    public void RemovingEverything_ReturnsNothing_AndReaddingWorks()
    {
        var data = VectorTestData.Clustered(500, Dimensions, clusters: 5, seed: 12);
        var index = Build(data, GraphOnly);
        for (var doc = 0; doc < data.Length; doc++)
        {
            index.Remove(doc);
        }
        var results = new ScoredDoc[K];
        index.Search(data[0], results, new AllDocs()).Should().Be(0);

        index.Add(0, data[0]); // a removed document number may be added again
        index.Search(data[0], results, new AllDocs()).Should().Be(1);
        results[0].Doc.Should().Be(0);
    }

    [Theory]
    [InlineData(2)]    // half the documents allowed: the graph walk finds them
    [InlineData(500)]  // 0.2%: the walk exhausts its budget and the exact fallback answers
    public void FilteredSearch_ReturnsKAllowedDocuments(int modulus)
    {
        var all = VectorTestData.Clustered(6_050, Dimensions, clusters: 20, seed: 13);
        var data = all[..6_000];
        var queries = all[6_000..];
        var index = Build(data, GraphOnly);
        var flat = new FlatVectorIndex(Dimensions);
        for (var doc = 0; doc < data.Length; doc++)
        {
            flat.Add(doc, data[doc]);
        }
        var filter = new ModuloFilter(modulus);
        var expected = new ScoredDoc[K];
        var actual = new ScoredDoc[K];
        var hits = 0;
        foreach (var query in queries)
        {
            flat.Search(query, expected, filter).Should().Be(K);
            index.Search(query, actual, filter).Should().Be(K);
            actual.Should().OnlyContain(r => r.Doc % modulus == 0);
            hits += actual.Select(a => a.Doc).Intersect(expected.Select(e => e.Doc)).Count();
        }
        (hits / (double)(K * queries.Length)).Should().BeGreaterThanOrEqualTo(0.9);
    }

    [Fact]
    public void FilterAllowingFewerThanK_ReturnsAllOfThem()
    {
        var data = VectorTestData.Clustered(3_000, Dimensions, clusters: 10, seed: 15);
        var index = Build(data, GraphOnly);
        var results = new ScoredDoc[K];
        index.Search(data[5], results, new ModuloFilter(1_000)).Should().Be(3); // docs 0, 1000, 2000
        results.Take(3).Select(r => r.Doc).Should().BeEquivalentTo([0, 1_000, 2_000]);
    }

    [Theory]
    [InlineData(VectorQuantization.None)]
    [InlineData(VectorQuantization.Int8)]
    [InlineData(VectorQuantization.Int8Rerank)]
    public void SaveThenLoad_GivesIdenticalResults_AndKeepsGrowingIdentically(VectorQuantization quantization)
    {
        var options = GraphOnly with { Quantization = quantization };
        var data = VectorTestData.Clustered(3_000, Dimensions, clusters: 10, seed: 16);
        var original = Build(data.Take(2_500).ToArray(), options);
        original.Remove(17);
        original.Add(2_500, new float[Dimensions]); // a zero vector: stored, never linked

        using var stream = new MemoryStream();
        original.Save(stream);
        stream.Position = 0;
        var loaded = HnswIndex.Load(stream);
        loaded.Count.Should().Be(original.Count);
        loaded.NodeCount.Should().Be(original.NodeCount);
        loaded.Options.Should().Be(options);

        // Inserting the same vectors into both must build the same graph (the level generator state is saved too).
        for (var doc = 2_501; doc < data.Length; doc++)
        {
            original.Add(doc, data[doc]);
            loaded.Add(doc, data[doc]);
        }
        var queries = VectorTestData.Clustered(100, Dimensions, clusters: 10, seed: 17);
        var a = new ScoredDoc[K];
        var b = new ScoredDoc[K];
        foreach (var query in queries)
        {
            var n = original.Search(query, a, new AllDocs());
            loaded.Search(query, b, new AllDocs()).Should().Be(n);
            b.Should().Equal(a);
        }
    }

    [Fact]
    public void CorruptOrTruncatedSnapshots_Throw()
    {
        var data = VectorTestData.Clustered(400, Dimensions, clusters: 4, seed: 18);
        var index = Build(data, GraphOnly);
        using var stream = new MemoryStream();
        index.Save(stream);
        var bytes = stream.ToArray();

        var random = new Random(19);
        var positions = new[] { 0, 9, 13, 53, 70, 80, bytes.Length / 3, bytes.Length / 2, bytes.Length - 20, bytes.Length - 1 }
            .Concat(Enumerable.Range(0, 30).Select(_ => random.Next(bytes.Length)));
        foreach (var position in positions)
        {
            var corrupt = (byte[])bytes.Clone();
            corrupt[position] ^= 0x5A;
            var load = () => HnswIndex.Load(new MemoryStream(corrupt));
            load.Should().Throw<InvalidDataException>($"byte {position} was flipped");
        }
        foreach (var length in new[] { 0, 7, 71, 72, 100, bytes.Length / 2, bytes.Length - 1 })
        {
            var load = () => HnswIndex.Load(new MemoryStream(bytes, 0, length));
            load.Should().Throw<InvalidDataException>($"the snapshot was cut to {length} bytes");
        }
    }

    [Fact]
    public async Task ConcurrentSearchesDuringInserts_NeverThrow()
    {
        var data = VectorTestData.Clustered(2_500, Dimensions, clusters: 10, seed: 20);
        var index = new HnswIndex(Dimensions, GraphOnly with { ExactSearchThreshold = 1_000 });
        using var done = new CancellationTokenSource();
        var searches = 0;
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var results = new ScoredDoc[K];
            var i = r;
            while (!done.IsCancellationRequested)
            {
                var before = index.Count;
                var n = index.Search(data[i++ % data.Length], results, new AllDocs());
                if (before >= 2 * K)
                {
                    // A full page once the index is well above K. (Not min(K, before) at any size: the writer removes a
                    // document every seventh insert, so the first document can be gone between the count and the search.)
                    n.Should().Be(K);
                }
                results.Take(n).Select(x => x.Doc).Should().OnlyHaveUniqueItems();
                Interlocked.Increment(ref searches);
            }
        })).ToArray();
        // On a loaded machine the readers may not be scheduled before the inserts finish: start them first.
        SpinWait.SpinUntil(() => Volatile.Read(ref searches) > 0, TimeSpan.FromSeconds(10)).Should().BeTrue("the readers started");
        var searchesBeforeInserts = Volatile.Read(ref searches);
        for (var doc = 0; doc < data.Length; doc++)
        {
            index.Add(doc, data[doc]);
            if (doc % 7 == 0)
            {
                index.Remove(doc / 2);
            }
        }
        done.Cancel();
        await Task.WhenAll(readers);
        searches.Should().BeGreaterThan(searchesBeforeInserts, "searches ran while the graph grew");
    }

    [Theory]
    [InlineData(VectorQuantization.None)]
    [InlineData(VectorQuantization.Int8Rerank)]
    public void Searches_AllocateNothing_OnceWarm(VectorQuantization quantization)
    {
        var data = VectorTestData.Clustered(2_000, Dimensions, clusters: 10, seed: 25);
        var index = Build(data, GraphOnly with { Quantization = quantization });
        var results = new ScoredDoc[K];
        var filter = new ModuloFilter(3);
        index.Search(data[0], results, new AllDocs());
        index.Search(data[0], results, filter);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 200; i++)
        {
            index.Search(data[i], results, new AllDocs());
            index.Search(data[i], results, filter);
        }
        (GC.GetAllocatedBytesForCurrentThread() - before).Should().Be(0);
    }

    [Fact]
    public void BelowTheThreshold_SearchIsExact()
    {
        var data = VectorTestData.Clustered(2_000, Dimensions, clusters: 10, seed: 21);
        var index = Build(data, new HnswOptions { EfSearch = 1 }); // ef 1 would miss neighbours if the graph were used
        var flat = new FlatVectorIndex(Dimensions);
        for (var doc = 0; doc < data.Length; doc++)
        {
            flat.Add(doc, data[doc]);
        }
        var expected = new ScoredDoc[K];
        var actual = new ScoredDoc[K];
        foreach (var query in VectorTestData.Clustered(30, Dimensions, clusters: 10, seed: 22))
        {
            flat.Search(query, expected, new AllDocs());
            index.Search(query, actual, new AllDocs());
            actual.Select(a => a.Doc).Should().Equal(expected.Select(e => e.Doc));
        }
    }

    [Fact]
    public void SameSeedAndInserts_BuildTheSameGraph_DifferentSeedsDoNot()
    {
        var data = VectorTestData.Clustered(2_000, Dimensions, clusters: 10, seed: 23);
        var a = Save(Build(data, GraphOnly));
        var b = Save(Build(data, GraphOnly));
        var c = Save(Build(data, GraphOnly with { Seed = 99 }));
        b.Should().Equal(a);
        c.Should().NotEqual(a);
    }

    [Fact]
    public void Add_RejectsDuplicatesAndWrongDimensions_AcceptsZeroVectors()
    {
        var index = new HnswIndex(Dimensions, GraphOnly);
        var v = VectorTestData.Clustered(1, Dimensions, 1, seed: 24)[0];
        index.Add(3, v);
        var duplicate = () => index.Add(3, v);
        duplicate.Should().Throw<InvalidOperationException>();
        var wrong = () => index.Add(4, new float[Dimensions + 1]);
        wrong.Should().Throw<ArgumentException>();
        index.Add(4, new float[Dimensions]);
        index.Count.Should().Be(2);
        var results = new ScoredDoc[K];
        index.Search(v, results, new AllDocs()).Should().Be(2);
        results[0].Should().Be(new ScoredDoc(3, results[0].Score));
        results[1].Should().Be(new ScoredDoc(4, 0f));
    }

    [Fact]
    public void EmptyIndex_SearchesAndRoundTrips()
    {
        var index = new HnswIndex(Dimensions, GraphOnly);
        var results = new ScoredDoc[K];
        var query = VectorTestData.Clustered(1, Dimensions, 1, seed: 26)[0];
        index.Search(query, results, new AllDocs()).Should().Be(0);
        var loaded = HnswIndex.Load(new MemoryStream(Save(index)));
        loaded.Count.Should().Be(0);
        loaded.Search(query, results, new AllDocs()).Should().Be(0);
        loaded.Add(1, query);
        loaded.Search(query, results, new AllDocs()).Should().Be(1);
    }

    private static HnswIndex Build(float[][] data, HnswOptions options)
    {
        var index = new HnswIndex(data[0].Length, options);
        for (var doc = 0; doc < data.Length; doc++)
        {
            index.Add(doc, data[doc]);
        }
        return index;
    }

    private static byte[] Save(HnswIndex index)
    {
        using var stream = new MemoryStream();
        index.Save(stream);
        return stream.ToArray();
    }

    private readonly struct ModuloFilter(int modulus) : IDocFilter
    {
        public bool Allows(int doc) => doc % modulus == 0;
    }
}
