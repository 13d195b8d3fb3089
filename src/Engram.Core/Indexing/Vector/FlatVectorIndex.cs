using System.Numerics.Tensors;

namespace Engram.Core.Indexing.Vector;

/// <summary>
/// Exact search: one SIMD dot product (TensorPrimitives) per live vector. The right choice below a
/// few tens of thousands of vectors, and the oracle the approximate index is tested against.
/// </summary>
public sealed class FlatVectorIndex(int dimensions) : IVectorIndex
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private float[] _vectors = new float[dimensions * 1024];
    private bool[] _live = new bool[1024];
    private int _maxDoc = -1;
    private int _count;

    public int Dimensions { get; } = dimensions;

    public int Count => _count;

    public void Add(int doc, ReadOnlySpan<float> vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(doc);
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"expected {Dimensions} dimensions, got {vector.Length}", nameof(vector));
        }
        _lock.EnterWriteLock();
        try
        {
            if (doc >= _live.Length)
            {
                var size = Math.Max(doc + 1, _live.Length * 2);
                Array.Resize(ref _live, size);
                Array.Resize(ref _vectors, size * Dimensions);
            }
            if (_live[doc])
            {
                throw new InvalidOperationException($"document number {doc} is already in the index");
            }
            vector.CopyTo(_vectors.AsSpan(doc * Dimensions, Dimensions));
            _live[doc] = true;
            _count++;
            _maxDoc = Math.Max(_maxDoc, doc);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Remove(int doc)
    {
        _lock.EnterWriteLock();
        try
        {
            if (doc < _live.Length && _live[doc])
            {
                _live[doc] = false;
                _count--;
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public int Search<TFilter>(ReadOnlySpan<float> query, Span<ScoredDoc> results, TFilter filter) where TFilter : IDocFilter
    {
        if (query.Length != Dimensions)
        {
            throw new ArgumentException($"expected {Dimensions} dimensions, got {query.Length}", nameof(query));
        }
        _lock.EnterReadLock();
        try
        {
            var top = new TopK(results);
            var vectors = _vectors.AsSpan();
            for (var doc = 0; doc <= _maxDoc; doc++)
            {
                if (_live[doc] && filter.Allows(doc))
                {
                    top.Add(doc, TensorPrimitives.Dot(query, vectors.Slice(doc * Dimensions, Dimensions)));
                }
            }
            return top.Finish();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public float Similarity(int doc, ReadOnlySpan<float> query)
    {
        _lock.EnterReadLock();
        try
        {
            return doc < _live.Length && _live[doc] ? TensorPrimitives.Dot(query, _vectors.AsSpan(doc * Dimensions, Dimensions)) : 0f;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
