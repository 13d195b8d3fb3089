using System.Numerics.Tensors;

namespace Engram.Core.Indexing.Vector;

public sealed unsafe partial class HnswIndex
{
    /// <summary>
    /// The cosine of <paramref name="doc"/>'s stored vector with <paramref name="query"/> (0 when it has
    /// none): what hybrid search uses to score candidates the lexical index found. Int8-only indexes
    /// answer from the codes (within the quantisation error).
    /// </summary>
    public float Similarity(int doc, ReadOnlySpan<float> query)
    {
        if (query.Length != Dimensions)
        {
            throw new ArgumentException($"expected {Dimensions} dimensions, got {query.Length}", nameof(query));
        }
        _lock.EnterReadLock();
        try
        {
            var node = doc >= 0 && doc < _nodeOfDoc.Length ? _nodeOfDoc[doc] - 1 : -1;
            if (node < 0 || node >= _nodeCount || _deleted[node])
            {
                return 0f;
            }
            if (_hasFloats)
            {
                return TensorPrimitives.Dot(query, new ReadOnlySpan<float>(_vectors.Pointer + ((nint)node * _floatStride), Dimensions));
            }
            var codes = new ReadOnlySpan<sbyte>(_codes.Pointer + ((nint)node * _codeStride), Dimensions);
            var sum = 0f;
            for (var i = 0; i < codes.Length; i++)
            {
                sum += query[i] * codes[i];
            }
            return sum * _scales.Pointer[node];
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
