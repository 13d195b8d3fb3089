namespace Engram.Core.Indexing.Vector;

/// <summary>
/// Approximate nearest-neighbour search with a Hierarchical Navigable Small World graph (Malkov and Yashunin, 2016),
/// over unit vectors scored by dot product (= cosine).
/// <para>
/// Layout: nodes are numbered densely in insertion order (a node is one Add; the caller's document number maps to
/// it). Vectors live in contiguous pinned, 64-byte-aligned blocks (float32 rows padded to 8 floats, and/or int8 rows
/// padded to 16 bytes plus a float scale per row, see <see cref="VectorQuantization"/>); layer-0 links in one flat
/// int block (count then up to 2*M ids per node); upper-layer links in a second flat block addressed by a per-node
/// offset. The hot path therefore touches no per-node objects and does no bounds checks.
/// </para>
/// <para>
/// Concurrency: any number of searches run under a read lock. Add takes the upgradeable lock (one writer at a time,
/// readers still admitted) for the expensive part, finding neighbours and computing every changed link list, and
/// takes the write lock only to copy those lists in and publish the node, so readers never see a half-linked node.
/// </para>
/// <para>
/// Removal tombstones a node: it keeps routing searches but is never returned, until <see cref="Compact"/> rebuilds
/// the graph from the live nodes (HnswIndex.Compact.cs; the server runs it when tombstones pass a share of the nodes). Filters are applied to results, not
/// to traversal (the graph stays navigable). When a search cannot find enough results within a budget of distance
/// evaluations (a very selective filter, or many tombstones), it falls back to an exact scan of the allowed
/// vectors, so a search returns k results whenever k allowed documents exist. The budget is an eighth of the live
/// vectors (at least 4*ef*2M), so the fallback costs at most about 1.125 exact scans. Below
/// <see cref="HnswOptions.ExactSearchThreshold"/> live vectors every search is exact. All-zero vectors are stored but
/// never linked (they score 0 against everything); the exact paths still return them.
/// </para>
/// </summary>
public sealed unsafe partial class HnswIndex : IVectorIndex
{
    private const int InitialCapacity = 1024;
    private const int MaxLevel = 30;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly HnswOptions _options;
    private readonly int _m;          // links per node on layers >= 1
    private readonly int _m0;         // links per node on layer 0
    private readonly int _stride0;    // ints per node in the layer-0 block: count + _m0 ids
    private readonly int _strideUpper; // ints per (node, layer >= 1): count + _m ids
    private readonly int _floatStride; // floats per stored float row
    private readonly int _codeStride;  // bytes per stored int8 row
    private readonly bool _quantized;  // graph walks score int8 codes
    private readonly bool _hasFloats;  // float rows are stored (float mode, or int8 with re-ranking)
    private readonly double _levelMultiplier;

    private PinnedBlock<float> _vectors;  // _floatStride floats per node, when _hasFloats
    private PinnedBlock<sbyte> _codes;    // _codeStride codes per node, when _quantized
    private PinnedBlock<float> _scales;   // int8 mode: one per node
    private PinnedBlock<int> _links0;
    private PinnedBlock<int> _linksUpper;
    private int _upperUsed;
    private int[] _upperOffset;  // per node: start of its layer-1 list in _linksUpper (-1 when level 0)
    private byte[] _levels;
    private bool[] _deleted;
    private int[] _docOfNode;
    private int[] _nodeOfDoc = []; // node + 1, so the zero-filled default means "none"

    private int _capacity;
    private int _nodeCount;       // published nodes; only these are reachable by readers
    private volatile int _liveCount;
    private int _deletedCount;
    private int _entry = -1;
    private int _maxLevel = -1;
    private ulong _rngState;

    public HnswIndex(int dimensions, HnswOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        options ??= HnswOptions.Default;
        options.Validate();
        Dimensions = dimensions;
        _options = options;
        _m = options.M;
        _m0 = 2 * options.M;
        _stride0 = _m0 + 1;
        _strideUpper = _m + 1;
        _quantized = options.Quantization != VectorQuantization.None;
        _hasFloats = options.Quantization != VectorQuantization.Int8;
        _floatStride = VectorKernels.FloatStride(dimensions);
        _codeStride = VectorKernels.Int8Stride(dimensions);
        _levelMultiplier = 1.0 / Math.Log(_m);
        _rngState = options.Seed;
        _upperOffset = [];
        _levels = [];
        _deleted = [];
        _docOfNode = [];
        _linksUpper = new PinnedBlock<int>(InitialCapacity / 8 * _strideUpper);
        _insert = new InsertScratch(_m0, MaxLevel);
        Grow(InitialCapacity);
    }

    public int Dimensions { get; }

    public int Count => _liveCount;

    public HnswOptions Options => _options;

    /// <summary>Nodes held, including tombstoned ones (they occupy memory and route searches until <see cref="Compact"/>).</summary>
    public int NodeCount => Volatile.Read(ref _nodeCount);

    public void Add(int doc, ReadOnlySpan<float> vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(doc);
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"expected {Dimensions} dimensions, got {vector.Length}", nameof(vector));
        }
        _lock.EnterUpgradeableReadLock();
        try
        {
            var existing = doc < _nodeOfDoc.Length ? _nodeOfDoc[doc] - 1 : -1;
            if (existing >= 0 && !_deleted[existing])
            {
                throw new InvalidOperationException($"document number {doc} is already in the index");
            }
            if (_nodeCount == _capacity || doc >= _nodeOfDoc.Length)
            {
                _lock.EnterWriteLock();
                try
                {
                    if (_nodeCount == _capacity)
                    {
                        Grow(checked(_capacity * 2));
                    }
                    if (doc >= _nodeOfDoc.Length)
                    {
                        Array.Resize(ref _nodeOfDoc, Math.Max(doc + 1, Math.Max(InitialCapacity, _nodeOfDoc.Length * 2)));
                    }
                }
                finally
                {
                    _lock.ExitWriteLock();
                }
            }
            Insert(doc, vector);
        }
        finally
        {
            _lock.ExitUpgradeableReadLock();
        }
    }

    public void Remove(int doc)
    {
        _lock.EnterWriteLock();
        try
        {
            var node = doc >= 0 && doc < _nodeOfDoc.Length ? _nodeOfDoc[doc] - 1 : -1;
            if (node >= 0 && !_deleted[node])
            {
                _deleted[node] = true;
                _deletedCount++;
                _liveCount--;
                _journal?.Add((doc, -1));
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>True when <paramref name="doc"/> is in the index and not removed.</summary>
    public bool Contains(int doc)
    {
        _lock.EnterReadLock();
        try
        {
            var node = doc >= 0 && doc < _nodeOfDoc.Length ? _nodeOfDoc[doc] - 1 : -1;
            return node >= 0 && !_deleted[node];
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Replaces every array with a larger copy; only called under the write lock.</summary>
    private void Grow(int capacity)
    {
        if (_quantized)
        {
            _codes = _codes.Resize(capacity * _codeStride, _nodeCount * _codeStride);
            _scales = _scales.Resize(capacity, _nodeCount);
        }
        if (_hasFloats)
        {
            _vectors = _vectors.Resize(capacity * _floatStride, _nodeCount * _floatStride);
        }
        _links0 = _links0.Resize(capacity * _stride0, _nodeCount * _stride0);
        Array.Resize(ref _upperOffset, capacity);
        Array.Resize(ref _levels, capacity);
        Array.Resize(ref _deleted, capacity);
        Array.Resize(ref _docOfNode, capacity);
        _capacity = capacity;
    }

    /// <summary>Layer <paramref name="level"/>'s link list of <paramref name="node"/>: a count followed by the ids.</summary>
    private int* Links(int node, int level) =>
        level == 0 ? _links0.Pointer + ((nint)node * _stride0) : _linksUpper.Pointer + _upperOffset[node] + ((level - 1) * _strideUpper);

    /// <summary>Draws a level from the exponential distribution of the paper, floor(-ln(U) / ln(M)), deterministically.</summary>
    private int NextLevel()
    {
        // SplitMix64: tiny, fast and statistically sound; the state is saved in snapshots.
        var z = _rngState += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        var uniform = ((z >> 11) + 1) * (1.0 / (1UL << 53)); // (0, 1]
        return Math.Min(MaxLevel, (int)(-Math.Log(uniform) * _levelMultiplier));
    }
}
