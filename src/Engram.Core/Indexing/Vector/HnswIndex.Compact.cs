namespace Engram.Core.Indexing.Vector;

/// <summary>
/// Reclaiming tombstones. A removed node keeps its row, its links and its place in every walk until the graph is
/// compacted: a fresh graph is built from the live rows this index already holds (nothing is embedded again), off
/// the locks, while searches and writes go on against the old one; the writes made meanwhile are journaled and
/// replayed on the fresh graph; then, under the write lock for as long as it takes to swap a few references, this
/// index takes the fresh graph over.
/// </summary>
/// <remarks>
/// Why a rebuild rather than in-place repair (hnswlib's replace_deleted): the rebuilt graph is exactly as good as one
/// built from the live set, the hot path needs no new state (no free list, no partially repaired lists a reader might
/// walk), and the cost is known: one insert per live node, paid once per <c>share</c> of the nodes dying, so about
/// (1 - share) / share inserts per removal (4 at 20 %). The price is memory while it runs: both graphs exist for the
/// duration, so the peak is about twice this index (the old one is garbage after the swap).
/// </remarks>
public sealed unsafe partial class HnswIndex
{
    private const int CompactionBatch = 256;

    /// <summary>Journal entries left when the final replay runs under the upgradeable lock (writers wait that long).</summary>
    private const int FinalReplay = 64;

    private readonly Lock _compaction = new();

    // Writes made while a compaction runs, in order: (doc, node) for an add of that node, (doc, -1) for a removal.
    // Written under the write lock, swapped out by the compaction under the upgradeable lock.
    private List<(int Doc, int Node)>? _journal;
    private long _compactions;

    /// <summary>Removed nodes still held (they occupy memory and route searches until <see cref="Compact"/>).</summary>
    public int Tombstones => Volatile.Read(ref _deletedCount);

    /// <summary>Compactions that swapped in a fresh graph since this index was made.</summary>
    public long Compactions => Interlocked.Read(ref _compactions);

    /// <summary>Whether tombstones are at least <paramref name="minShare"/> of the nodes and at least <paramref name="minTombstones"/>.</summary>
    public bool NeedsCompaction(double minShare, int minTombstones = 1)
    {
        var dead = Tombstones;
        return dead > 0 && dead >= minTombstones && dead >= minShare * NodeCount;
    }

    /// <summary>
    /// Rebuilds the graph from its live nodes when tombstones are at least <paramref name="minShare"/> of the nodes
    /// (and at least <paramref name="minTombstones"/>); returns the tombstones dropped (0 when below the threshold or
    /// when another compaction is running). Searches, adds and removals go on meanwhile; only the final swap holds
    /// the write lock. Cancelling leaves the index as it was.
    /// </summary>
    public int Compact(double minShare = 0.2, int minTombstones = 1, CancellationToken ct = default)
    {
        if (!_compaction.TryEnter())
        {
            return 0;
        }
        try
        {
            int published;
            _lock.EnterUpgradeableReadLock();
            try
            {
                if (!NeedsCompaction(minShare, minTombstones))
                {
                    return 0;
                }
                published = _nodeCount;
                _journal = []; // writers are held off while in the upgradeable lock, so none is mid-way
            }
            finally
            {
                _lock.ExitUpgradeableReadLock();
            }
            try
            {
                return CompactFrom(published, ct);
            }
            finally
            {
                if (_journal is not null)
                {
                    _lock.EnterUpgradeableReadLock();
                    _journal = null; // cancelled or failed: the old graph stays, complete
                    _lock.ExitUpgradeableReadLock();
                }
            }
        }
        finally
        {
            _compaction.Exit();
        }
    }

    private int CompactFrom(int published, CancellationToken ct)
    {
        var fresh = new HnswIndex(Dimensions, _options with { Seed = _rngState });
        fresh.Reserve(Math.Max(InitialCapacity, Count + (Count / 8)), _nodeOfDoc.Length);
        var rows = new float[CompactionBatch * Dimensions];
        var docs = new int[CompactionBatch];
        for (var start = 0; start < published; start += CompactionBatch)
        {
            ct.ThrowIfCancellationRequested();
            var n = 0;
            _lock.EnterReadLock();
            try
            {
                for (var node = start; node < Math.Min(published, start + CompactionBatch); node++)
                {
                    if (!_deleted[node])
                    {
                        docs[n] = _docOfNode[node];
                        CopyRow(node, rows.AsSpan(n * Dimensions, Dimensions));
                        n++;
                    }
                }
            }
            finally
            {
                _lock.ExitReadLock();
            }
            for (var i = 0; i < n; i++)
            {
                fresh.Add(docs[i], rows.AsSpan(i * Dimensions, Dimensions));
            }
        }

        // Catch up with the writes made meanwhile, in rounds, until few enough are left to replay while writers wait.
        var row = new float[Dimensions];
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            List<(int Doc, int Node)> changes;
            _lock.EnterUpgradeableReadLock();
            try
            {
                changes = _journal!;
                if (changes.Count <= FinalReplay)
                {
                    Replay(fresh, changes, row, locked: true);
                    _lock.EnterWriteLock();
                    try
                    {
                        var dropped = _deletedCount - fresh._deletedCount;
                        TakeOver(fresh);
                        _journal = null;
                        Interlocked.Increment(ref _compactions);
                        return dropped;
                    }
                    finally
                    {
                        _lock.ExitWriteLock();
                    }
                }
                _journal = [];
            }
            finally
            {
                _lock.ExitUpgradeableReadLock();
            }
            Replay(fresh, changes, row, locked: false);
        }
    }

    /// <summary>Applies journaled writes to <paramref name="fresh"/>; <paramref name="locked"/> when the caller holds this index's upgradeable lock.</summary>
    private void Replay(HnswIndex fresh, List<(int Doc, int Node)> changes, float[] row, bool locked)
    {
        foreach (var (doc, node) in changes)
        {
            if (node < 0)
            {
                fresh.Remove(doc);
                continue;
            }
            if (!locked)
            {
                _lock.EnterReadLock();
            }
            try
            {
                CopyRow(node, row); // a published node's row never changes
            }
            finally
            {
                if (!locked)
                {
                    _lock.ExitReadLock();
                }
            }
            if (!fresh.Contains(doc))
            {
                fresh.Add(doc, row);
            }
        }
    }

    /// <summary>The stored vector of <paramref name="node"/>: the float row, or in int8-only mode the codes times their scale.</summary>
    private void CopyRow(int node, Span<float> destination)
    {
        if (_hasFloats)
        {
            new ReadOnlySpan<float>(_vectors.Pointer + ((nint)node * _floatStride), Dimensions).CopyTo(destination);
            return;
        }
        var codes = new ReadOnlySpan<sbyte>(_codes.Pointer + ((nint)node * _codeStride), Dimensions);
        var scale = _scales.Pointer[node];
        for (var i = 0; i < codes.Length; i++)
        {
            destination[i] = codes[i] * scale;
        }
    }

    /// <summary>Sizes a fresh index's arrays up front, so a rebuild does not grow them step by step.</summary>
    private void Reserve(int nodes, int docs)
    {
        _lock.EnterWriteLock();
        try
        {
            if (nodes > _capacity)
            {
                Grow(nodes);
            }
            if (docs > _nodeOfDoc.Length)
            {
                Array.Resize(ref _nodeOfDoc, docs);
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Takes over <paramref name="fresh"/>'s graph; called under the write lock, <paramref name="fresh"/> is not used again.</summary>
    private void TakeOver(HnswIndex fresh)
    {
        _vectors = fresh._vectors;
        _codes = fresh._codes;
        _scales = fresh._scales;
        _links0 = fresh._links0;
        _linksUpper = fresh._linksUpper;
        _upperUsed = fresh._upperUsed;
        _upperOffset = fresh._upperOffset;
        _levels = fresh._levels;
        _deleted = fresh._deleted;
        _docOfNode = fresh._docOfNode;
        _nodeOfDoc = fresh._nodeOfDoc;
        _capacity = fresh._capacity;
        _nodeCount = fresh._nodeCount;
        _liveCount = fresh._liveCount;
        _deletedCount = fresh._deletedCount;
        _entry = fresh._entry;
        _maxLevel = fresh._maxLevel;
        _rngState = fresh._rngState;
    }

    /// <summary>
    /// Renames every document: <paramref name="map"/>[old] is its new number (-1 for one no longer known, whose node
    /// must be a tombstone). Refused (false) while a compaction runs, whose journal holds old numbers.
    /// </summary>
    public bool RenumberDocs(ReadOnlySpan<int> map)
    {
        if (!_compaction.TryEnter())
        {
            return false;
        }
        try
        {
            _lock.EnterWriteLock();
            try
            {
                var size = 0;
                foreach (var doc in map)
                {
                    size = Math.Max(size, doc + 1);
                }
                var nodeOfDoc = new int[Math.Max(InitialCapacity, size + (size / 4))];
                for (var node = 0; node < _nodeCount; node++)
                {
                    var old = _docOfNode[node];
                    var doc = old < map.Length ? map[old] : -1;
                    if (doc < 0)
                    {
                        if (!_deleted[node])
                        {
                            throw new InvalidOperationException($"document {old} is live in the graph but has no new number");
                        }
                        _docOfNode[node] = 0; // a tombstone's document is never looked at again
                        continue;
                    }
                    _docOfNode[node] = doc;
                    if (!_deleted[node] || nodeOfDoc[doc] == 0)
                    {
                        nodeOfDoc[doc] = node + 1;
                    }
                }
                _nodeOfDoc = nodeOfDoc;
                return true;
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
        finally
        {
            _compaction.Exit();
        }
    }
}
