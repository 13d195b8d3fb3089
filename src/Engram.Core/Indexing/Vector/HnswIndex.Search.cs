using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engram.Core.Indexing.Vector;

public sealed unsafe partial class HnswIndex
{
    public int Search<TFilter>(ReadOnlySpan<float> query, Span<ScoredDoc> results, TFilter filter) where TFilter : IDocFilter =>
        Search(query, results, filter, _options.EfSearch);

    /// <summary>
    /// As <see cref="Search{TFilter}(ReadOnlySpan{float}, Span{ScoredDoc}, TFilter)"/> with an explicit candidate list
    /// size (raised to <c>results.Length</c> when smaller): higher is more accurate and slower.
    /// </summary>
    public int Search<TFilter>(ReadOnlySpan<float> query, Span<ScoredDoc> results, TFilter filter, int efSearch) where TFilter : IDocFilter
    {
        if (query.Length != Dimensions)
        {
            throw new ArgumentException($"expected {Dimensions} dimensions, got {query.Length}", nameof(query));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(efSearch, 1);
        if (results.IsEmpty)
        {
            return 0;
        }
        var scratch = SearchScratch.Current;
        _lock.EnterReadLock();
        try
        {
            var floats = _hasFloats ? scratch.PrepareFloat(query, _vectors.Pointer, _floatStride) : default;
            if (_quantized)
            {
                var int8 = scratch.PrepareInt8(query, _codes.Pointer, _scales.Pointer, _codeStride);
                return _hasFloats
                    ? SearchCore(ref int8, ref floats, rerank: true, scratch, results, filter, efSearch)
                    : SearchCore(ref int8, ref int8, rerank: false, scratch, results, filter, efSearch);
            }
            return SearchCore(ref floats, ref floats, rerank: false, scratch, results, filter, efSearch);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Exact search regardless of size (for tests and for measuring recall against the same storage).</summary>
    public int SearchExact<TFilter>(ReadOnlySpan<float> query, Span<ScoredDoc> results, TFilter filter) where TFilter : IDocFilter
    {
        if (query.Length != Dimensions)
        {
            throw new ArgumentException($"expected {Dimensions} dimensions, got {query.Length}", nameof(query));
        }
        var scratch = SearchScratch.Current;
        _lock.EnterReadLock();
        try
        {
            if (_hasFloats)
            {
                var floats = scratch.PrepareFloat(query, _vectors.Pointer, _floatStride);
                return ExactSearch(ref floats, results, filter);
            }
            var int8 = scratch.PrepareInt8(query, _codes.Pointer, _scales.Pointer, _codeStride);
            return ExactSearch(ref int8, results, filter);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Walks the graph scoring with <paramref name="space"/>; with <paramref name="rerank"/> the candidates found are
    /// re-scored with <paramref name="exact"/> (float rows) before the top-k cut, and exact scans use it too.
    /// </summary>
    private int SearchCore<TSpace, TExact, TFilter>(
        ref TSpace space, ref TExact exact, bool rerank, SearchScratch scratch, Span<ScoredDoc> results, TFilter filter, int ef)
        where TSpace : struct, IVectorSpace
        where TExact : struct, IVectorSpace
        where TFilter : IDocFilter
    {
        var k = results.Length;
        if (_entry < 0 || _liveCount < _options.ExactSearchThreshold)
        {
            return rerank ? ExactSearch(ref exact, results, filter) : ExactSearch(ref space, results, filter);
        }
        ef = Math.Max(ef, k);
        var filtered = typeof(TFilter) != typeof(AllDocs);
        var entry = Descend(ref space, _entry, _maxLevel, 0);
        // Unfiltered searches over a graph without tombstones stop by themselves after a few thousand evaluations.
        // Otherwise the walk continues until ef allowed results are found, which for a selective filter can mean
        // most of the graph: past an eighth of it an exact scan of the allowed vectors is the cheaper answer.
        var budget = filtered || _deletedCount > 0 ? Math.Max(_liveCount / 8, ef * _m0 * 4) : int.MaxValue;
        var found = SearchLayer(ref space, filter, scratch, entry, ef, 0, budget);
        if (found < k)
        {
            return rerank ? ExactSearch(ref exact, results, filter) : ExactSearch(ref space, results, filter);
        }
        var top = new TopK(results);
        if (rerank)
        {
            foreach (var result in scratch.Results)
            {
                exact.Prefetch(result.Node);
            }
            foreach (var result in scratch.Results)
            {
                top.Add(_docOfNode[result.Node], exact.Score(result.Node));
            }
        }
        else
        {
            foreach (var result in scratch.Results)
            {
                top.Add(_docOfNode[result.Node], result.Score);
            }
        }
        return top.Finish();
    }

    private int ExactSearch<TSpace, TFilter>(ref TSpace space, Span<ScoredDoc> results, TFilter filter)
        where TSpace : struct, IVectorSpace
        where TFilter : IDocFilter
    {
        var top = new TopK(results);
        for (var node = 0; node < _nodeCount; node++)
        {
            if (_deleted[node])
            {
                continue;
            }
            var doc = _docOfNode[node];
            if (typeof(TFilter) != typeof(AllDocs) && !filter.Allows(doc))
            {
                continue;
            }
            top.Add(doc, space.Score(node));
        }
        return top.Finish();
    }

    /// <summary>Greedy descent through layers <paramref name="fromLevel"/> down to <paramref name="toLevel"/> + 1 (ef = 1).</summary>
    private int Descend<TSpace>(ref TSpace space, int node, int fromLevel, int toLevel) where TSpace : struct, IVectorSpace
    {
        var best = space.Score(node);
        for (var level = fromLevel; level > toLevel; level--)
        {
            var changed = true;
            while (changed)
            {
                changed = false;
                var links = Links(node, level);
                var count = links[0];
                for (var j = 1; j <= count; j++)
                {
                    var candidate = links[j];
                    var score = space.Score(candidate);
                    if (score > best)
                    {
                        best = score;
                        node = candidate;
                        changed = true;
                    }
                }
            }
        }
        return node;
    }

    /// <summary>
    /// The paper's SEARCH-LAYER (algorithm 2) from one entry point on <paramref name="level"/>: leaves up to
    /// <paramref name="ef"/> allowed nodes in the scratch result heap and returns how many, or -1 when more than
    /// <paramref name="budget"/> vectors were scored. Tombstoned and filtered-out nodes are traversed but never
    /// kept, and while they crowd the results the walk continues until ef allowed ones are found.
    /// </summary>
    private int SearchLayer<TSpace, TFilter>(ref TSpace space, TFilter filter, SearchScratch scratch, int entry, int ef, int level, int budget)
        where TSpace : struct, IVectorSpace
        where TFilter : IDocFilter
    {
        var visitedArray = scratch.BeginVisit(_nodeCount + 1, out var stamp); // + 1: a node being inserted
        ref var visited = ref MemoryMarshal.GetArrayDataReference(visitedArray);
        var checkAllowed = typeof(TFilter) != typeof(AllDocs) || _deletedCount > 0;
        var fresh = stackalloc int[_m0];

        var score = space.Score(entry);
        var evaluations = 1;
        Unsafe.Add(ref visited, entry) = stamp;
        scratch.PushCandidate(score, entry);
        var lowerBound = float.NegativeInfinity;
        if (!checkAllowed || Allowed(entry, filter))
        {
            scratch.PushResult(score, entry);
            lowerBound = score;
        }

        while (scratch.CandidateCount > 0)
        {
            var current = scratch.BestCandidate;
            // Every remaining candidate is worse than every kept result: done (unless still short of allowed results).
            if (current.Score < lowerBound && (scratch.ResultCount == ef || !checkAllowed))
            {
                break;
            }
            scratch.PopCandidate();

            // Collect the unvisited neighbours and prefetch all their rows first, so the cache misses overlap
            // instead of being paid one after another inside the scoring loop.
            var links = Links(current.Node, level);
            var count = links[0];
            var freshCount = 0;
            for (var j = 1; j <= count; j++)
            {
                var neighbour = links[j];
                ref var mark = ref Unsafe.Add(ref visited, neighbour);
                if (mark != stamp)
                {
                    mark = stamp;
                    space.Prefetch(neighbour);
                    fresh[freshCount++] = neighbour;
                }
            }
            evaluations += freshCount;
            if (evaluations > budget)
            {
                return -1;
            }
            for (var j = 0; j < freshCount; j++)
            {
                var neighbour = fresh[j];
                var similarity = space.Score(neighbour);
                if (scratch.ResultCount < ef || similarity > lowerBound)
                {
                    scratch.PushCandidate(similarity, neighbour);
                    if (!checkAllowed || Allowed(neighbour, filter))
                    {
                        scratch.PushResult(similarity, neighbour);
                        if (scratch.ResultCount > ef)
                        {
                            scratch.PopResult();
                        }
                        lowerBound = scratch.WorstResultScore;
                    }
                }
            }
        }
        return scratch.ResultCount;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Allowed<TFilter>(int node, TFilter filter) where TFilter : IDocFilter =>
        !_deleted[node] && (typeof(TFilter) == typeof(AllDocs) || filter.Allows(_docOfNode[node]));
}
