using Engram.Core.Indexing.Vector;

namespace Engram.Tests.Indexing.Vector;

/// <summary>An index in each storage mode over the same 20k clustered vectors, built once for the recall tests.</summary>
public sealed class HnswIndexFixture
{
    public const int Count = 20_000;
    public const int Dimensions = 64;
    public const int QueryCount = 200;

    /// <summary>Smaller than the default 200: the tests run unoptimised code; recall still clears the bar.</summary>
    public static readonly HnswOptions Options = new() { M = 16, EfConstruction = 100, EfSearch = 64 };

    public HnswIndexFixture()
    {
        // Queries come from the same clusters as the data (as real queries do): held-out samples, not indexed.
        var all = VectorTestData.Clustered(Count + QueryCount, Dimensions, clusters: 50, seed: 7);
        Data = all[..Count];
        Queries = all[Count..];
        Flat = new FlatVectorIndex(Dimensions);
        Float = new HnswIndex(Dimensions, Options);
        Int8 = new HnswIndex(Dimensions, Options with { Quantization = VectorQuantization.Int8 });
        Int8Rerank = new HnswIndex(Dimensions, Options with { Quantization = VectorQuantization.Int8Rerank });
        for (var doc = 0; doc < Count; doc++)
        {
            Flat.Add(doc, Data[doc]);
        }
        Parallel.Invoke(
            () => AddAll(Float),
            () => AddAll(Int8),
            () => AddAll(Int8Rerank));
    }

    public float[][] Data { get; }

    public float[][] Queries { get; }

    public FlatVectorIndex Flat { get; }

    public HnswIndex Float { get; }

    public HnswIndex Int8 { get; }

    public HnswIndex Int8Rerank { get; }

    private void AddAll(HnswIndex index)
    {
        for (var doc = 0; doc < Count; doc++)
        {
            index.Add(doc, Data[doc]);
        }
    }
}
