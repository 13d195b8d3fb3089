namespace Engram.Core.Indexing.Vector;

public sealed unsafe partial class HnswIndex
{
    private readonly InsertScratch _insert;

    /// <summary>
    /// The paper's INSERT (algorithm 1). Runs under the upgradeable lock: the new node's row and link lists are written
    /// to slots no reader can reach yet, and the changes to existing neighbours' lists are computed into scratch; the
    /// write lock is then held only to copy those lists in and publish the node.
    /// </summary>
    private void Insert(int doc, ReadOnlySpan<float> vector)
    {
        var node = _nodeCount;
        var level = NextLevel();
        if (_quantized)
        {
            _scales.Pointer[node] = VectorKernels.Quantize(vector, new Span<sbyte>(_codes.Pointer + ((nint)node * _codeStride), Dimensions));
        }
        if (_hasFloats)
        {
            vector.CopyTo(new Span<float>(_vectors.Pointer + ((nint)node * _floatStride), Dimensions));
        }
        _levels[node] = (byte)level;
        _docOfNode[node] = doc;
        _deleted[node] = false;
        _upperOffset[node] = level > 0 ? ReserveUpper(level) : -1;

        // All-zero vectors score 0 against everything; linking them would only add useless hubs. They stay
        // searchable through the exact paths.
        var linkable = !VectorKernels.IsZero(vector);
        _insert.PendingCount = 0;
        if (linkable && _entry >= 0)
        {
            if (_quantized)
            {
                var space = SearchScratch.Current.PrepareInt8Row(node, _codes.Pointer, _scales.Pointer, _codeStride);
                Connect(ref space, node, level);
            }
            else
            {
                var space = new FloatSpace(_vectors.Pointer + ((nint)node * _floatStride), _vectors.Pointer, _floatStride);
                Connect(ref space, node, level);
            }
        }

        _lock.EnterWriteLock();
        try
        {
            for (var i = 0; i < _insert.PendingCount; i++)
            {
                var pending = _insert.Pending(i);
                new ReadOnlySpan<int>(pending + 2, pending[2] + 1).CopyTo(new Span<int>(Links(pending[0], pending[1]), pending[2] + 1));
            }
            _nodeOfDoc[doc] = node + 1;
            _nodeCount = node + 1;
            _liveCount++;
            _journal?.Add((doc, node));
            if (linkable && (_entry < 0 || level > _maxLevel))
            {
                _entry = node;
                _maxLevel = level;
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Finds the new node's neighbours on each of its layers and prepares the reverse links.</summary>
    private void Connect<TSpace>(ref TSpace space, int node, int level) where TSpace : struct, IVectorSpace
    {
        var scratch = SearchScratch.Current;
        var current = level < _maxLevel ? Descend(ref space, _entry, _maxLevel, level) : _entry;
        for (var layer = Math.Min(level, _maxLevel); layer >= 0; layer--)
        {
            var found = SearchLayer(ref space, default(AllDocs), scratch, current, _options.EfConstruction, layer, int.MaxValue);
            if (found <= 0)
            {
                continue; // only tombstones were reachable on this layer; stay unlinked here rather than link to them
            }
            var sorted = _insert.Sorted(found);
            scratch.Results.CopyTo(sorted);
            sorted.Sort(static (a, b) => b.Score.CompareTo(a.Score));
            current = sorted[0].Node;

            // The new node keeps at most M links on every layer (as hnswlib does); layer 0 lists may grow to 2*M
            // through reverse links.
            var own = Links(node, layer);
            own[0] = SelectNeighbours(ref space, sorted, _m, own + 1);
            for (var i = 1; i <= own[0]; i++)
            {
                PrepareReverseLink(ref space, own[i], node, layer);
            }
        }
    }

    /// <summary>
    /// Computes <paramref name="neighbour"/>'s list on <paramref name="layer"/> after adding <paramref name="node"/>:
    /// appended when there is room, otherwise re-selected by the heuristic from the old list plus the new node.
    /// </summary>
    private void PrepareReverseLink<TSpace>(ref TSpace space, int neighbour, int node, int layer) where TSpace : struct, IVectorSpace
    {
        var links = Links(neighbour, layer);
        var count = links[0];
        var max = layer == 0 ? _m0 : _m;
        var pending = _insert.AddPending(neighbour, layer);
        if (count < max)
        {
            new ReadOnlySpan<int>(links + 1, count).CopyTo(new Span<int>(pending + 3, count));
            pending[3 + count] = node;
            pending[2] = count + 1;
            return;
        }
        var candidates = _insert.Sorted(count + 1);
        for (var i = 0; i < count; i++)
        {
            candidates[i] = new Candidate(space.Between(neighbour, links[1 + i]), links[1 + i]);
        }
        candidates[count] = new Candidate(space.Between(neighbour, node), node);
        candidates.Sort(static (a, b) => b.Score.CompareTo(a.Score));
        pending[2] = SelectNeighbours(ref space, candidates, max, pending + 3);
    }

    /// <summary>
    /// The paper's heuristic (algorithm 4, without extending or keeping pruned candidates, as in hnswlib): walking the
    /// candidates best first, keep one only if it is closer to the base than to every one already kept, which
    /// spreads links across directions instead of clustering them. <paramref name="sorted"/> is best first.
    /// </summary>
    private static int SelectNeighbours<TSpace>(ref TSpace space, ReadOnlySpan<Candidate> sorted, int max, int* output)
        where TSpace : struct, IVectorSpace
    {
        if (sorted.Length < max)
        {
            for (var i = 0; i < sorted.Length; i++)
            {
                output[i] = sorted[i].Node;
            }
            return sorted.Length;
        }
        var kept = 0;
        foreach (var candidate in sorted)
        {
            var good = true;
            for (var j = 0; j < kept; j++)
            {
                if (space.Between(candidate.Node, output[j]) > candidate.Score)
                {
                    good = false;
                    break;
                }
            }
            if (good)
            {
                output[kept++] = candidate.Node;
                if (kept == max)
                {
                    break;
                }
            }
        }
        return kept;
    }

    /// <summary>Reserves the new node's layer 1..level lists at the end of the upper-link block.</summary>
    private int ReserveUpper(int level)
    {
        var needed = level * _strideUpper;
        if (_upperUsed + needed > _linksUpper.Length)
        {
            _lock.EnterWriteLock();
            try
            {
                _linksUpper = _linksUpper.Resize(Math.Max(_upperUsed + needed, _linksUpper.Length * 2), _upperUsed);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
        var offset = _upperUsed;
        new Span<int>(_linksUpper.Pointer + offset, needed).Clear();
        _upperUsed += needed;
        return offset;
    }

    /// <summary>The single writer's working memory: sorted candidates and the link lists waiting to be published.</summary>
    private sealed class InsertScratch(int maxLinks, int maxLevel)
    {
        private readonly int _pendingStride = maxLinks + 3; // node, layer, count, ids
        private Candidate[] _sorted = new Candidate[256];
        private PinnedBlock<int> _pending = new((maxLevel + 1) * maxLinks * (maxLinks + 3));

        public int PendingCount { get; set; }

        public Span<Candidate> Sorted(int count)
        {
            if (_sorted.Length < count)
            {
                _sorted = new Candidate[Math.Max(count, _sorted.Length * 2)];
            }
            return _sorted.AsSpan(0, count);
        }

        public int* Pending(int index) => _pending.Pointer + ((nint)index * _pendingStride);

        public int* AddPending(int node, int layer)
        {
            if ((PendingCount + 1) * _pendingStride > _pending.Length)
            {
                _pending = _pending.Resize(_pending.Length * 2, PendingCount * _pendingStride);
            }
            var entry = Pending(PendingCount++);
            entry[0] = node;
            entry[1] = layer;
            entry[2] = 0;
            return entry;
        }
    }
}
