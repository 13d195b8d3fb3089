using System.Runtime.CompilerServices;

namespace Engram.Core.Indexing.Vector;

/// <summary>
/// Scores nodes against the current query. Passed as a generic struct so each storage mode gets its own
/// specialised, fully inlined copy of the search loops (no virtual call per distance).
/// </summary>
internal interface IVectorSpace
{
    /// <summary>Similarity of the query and <paramref name="node"/>'s stored vector.</summary>
    float Score(int node);

    /// <summary>Similarity of two stored vectors (the neighbour-selection heuristic compares candidates).</summary>
    float Between(int a, int b);

    void Prefetch(int node);
}

internal readonly unsafe struct FloatSpace(float* query, float* rows, int stride) : IVectorSpace
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Score(int node) => VectorKernels.Dot(query, rows + ((nint)node * stride), stride);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Between(int a, int b) => VectorKernels.Dot(rows + ((nint)a * stride), rows + ((nint)b * stride), stride);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(int node) => VectorKernels.Prefetch((byte*)(rows + ((nint)node * stride)), stride * sizeof(float));
}

internal readonly unsafe struct Int8Space(short* query, float queryScale, sbyte* codes, float* scales, int stride) : IVectorSpace
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Score(int node) => VectorKernels.Dot(query, codes + ((nint)node * stride), stride) * (queryScale * scales[node]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Between(int a, int b) =>
        VectorKernels.Dot(codes + ((nint)a * stride), codes + ((nint)b * stride), stride) * (scales[a] * scales[b]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(int node) => VectorKernels.Prefetch((byte*)(codes + ((nint)node * stride)), stride);
}
