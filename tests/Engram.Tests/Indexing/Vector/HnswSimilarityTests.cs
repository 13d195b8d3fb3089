using Engram.Core.Indexing.Vector;

namespace Engram.Tests.Indexing.Vector;

public sealed class HnswSimilarityTests
{
    [Theory]
    [InlineData(VectorQuantization.None, 1e-5f)]
    [InlineData(VectorQuantization.Int8, 0.02f)]
    public void Similarity_MatchesTheExactDotProduct(VectorQuantization quantization, float tolerance)
    {
        var random = new Random(7);
        var hnsw = new HnswIndex(32, HnswOptions.Default with { Quantization = quantization });
        var flat = new FlatVectorIndex(32);
        var vectors = Enumerable.Range(0, 50).Select(_ => Unit(random, 32)).ToList();
        for (var doc = 0; doc < vectors.Count; doc++)
        {
            hnsw.Add(doc, vectors[doc]);
            flat.Add(doc, vectors[doc]);
        }
        var query = Unit(random, 32);
        for (var doc = 0; doc < vectors.Count; doc++)
        {
            hnsw.Similarity(doc, query).Should().BeApproximately(flat.Similarity(doc, query), tolerance);
        }
        hnsw.Remove(3);
        hnsw.Similarity(3, query).Should().Be(0f, "a removed document has no vector");
        hnsw.Similarity(999, query).Should().Be(0f);
    }

    private static float[] Unit(Random random, int dimensions)
    {
        var v = Enumerable.Range(0, dimensions).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var norm = MathF.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }
}
