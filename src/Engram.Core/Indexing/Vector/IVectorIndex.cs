namespace Engram.Core.Indexing.Vector;

/// <summary>
/// A nearest-neighbour index over L2-normalised vectors keyed by caller-assigned document numbers.
/// Scores are cosine similarities (dot products of unit vectors), higher is closer.
/// Contract: a document number is added once (a new memory version gets a fresh number); all-zero
/// vectors are accepted and never match; many concurrent searches may run while one writer adds or
/// removes (implementations synchronise internally).
/// </summary>
public interface IVectorIndex
{
    int Dimensions { get; }

    /// <summary>Live (not removed) vectors.</summary>
    int Count { get; }

    void Add(int doc, ReadOnlySpan<float> vector);

    void Remove(int doc);

    /// <summary>
    /// Writes the most similar live documents that <paramref name="filter"/> allows into
    /// <paramref name="results"/>, best first, and returns how many. Approximate indexes may miss some
    /// true neighbours, but must return <c>results.Length</c> documents whenever that many are allowed.
    /// </summary>
    /// <summary>The cosine of <paramref name="doc"/>'s vector with <paramref name="query"/>; 0 when it has none.</summary>
    float Similarity(int doc, ReadOnlySpan<float> query);

    int Search<TFilter>(ReadOnlySpan<float> query, Span<ScoredDoc> results, TFilter filter) where TFilter : IDocFilter;
}
