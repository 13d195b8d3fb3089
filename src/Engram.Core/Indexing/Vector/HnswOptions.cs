namespace Engram.Core.Indexing.Vector;

/// <summary>How <see cref="HnswIndex"/> stores vectors.</summary>
public enum VectorQuantization
{
    /// <summary>float32, exact dot products.</summary>
    None,

    /// <summary>
    /// int8 with one float scale per vector (about 4x less memory, so more of the graph stays in cache);
    /// scores are approximate (typically within 0.01 of the float cosine for unit vectors).
    /// </summary>
    Int8,

    /// <summary>
    /// int8 for the graph walk, plus the float32 rows to re-score the final candidates: exact scores and float-level
    /// recall at int8 walking speed, for about 1.27x the memory of <see cref="None"/>.
    /// </summary>
    Int8Rerank,
}

/// <summary>
/// Tuning of <see cref="HnswIndex"/>. M and efConstruction are hnswlib's usual values; efSearch 128 is the smallest
/// power of two that reaches recall@10 of 0.95 on 200k GloVe word vectors, a hard set (bench/Engram.AnnBench/README.md):
/// about 0.2 ms per query there, so there is little reason to trade recall for speed at Engram's sizes.
/// </summary>
public sealed record HnswOptions
{
    public static HnswOptions Default { get; } = new();

    /// <summary>Links per node on the upper layers; layer 0 keeps up to 2*M (denser base layer, as in the paper).</summary>
    public int M { get; init; } = 16;

    /// <summary>Candidate list size while inserting: higher builds a better graph, linearly slower.</summary>
    public int EfConstruction { get; init; } = 200;

    /// <summary>Candidate list size while searching (raised to k when k is larger): the recall/speed knob.</summary>
    public int EfSearch { get; init; } = 128;

    /// <summary>
    /// Below this many live vectors searches scan every vector: exact, and at that size as fast as walking the graph.
    /// The graph is still maintained, so crossing the threshold costs nothing.
    /// </summary>
    public int ExactSearchThreshold { get; init; } = 5_000;

    public VectorQuantization Quantization { get; init; } = VectorQuantization.None;

    /// <summary>Seeds the level generator, so the same inserts in the same order build the same graph.</summary>
    public ulong Seed { get; init; } = 0x5EED_2024_0001UL;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(M, 2, nameof(M));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(M, 128, nameof(M));
        ArgumentOutOfRangeException.ThrowIfLessThan(EfConstruction, 1, nameof(EfConstruction));
        ArgumentOutOfRangeException.ThrowIfLessThan(EfSearch, 1, nameof(EfSearch));
        ArgumentOutOfRangeException.ThrowIfNegative(ExactSearchThreshold, nameof(ExactSearchThreshold));
        if (!Enum.IsDefined(Quantization))
        {
            throw new ArgumentOutOfRangeException(nameof(Quantization), Quantization, "unknown quantization");
        }
    }
}
