using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engram.Core.Indexing.Text;

/// <summary>
/// Top-k search. Two exact strategies, measured on the e2e corpus at 1M documents (bench: <c>lexical-tail</c>):
/// for a small k, document-at-a-time MaxScore skips most of the long posting lists; for the k the search service
/// asks (100 candidates), the k-th score stays low, MaxScore skips little and pays per document, and scoring
/// every posting term at a time is faster at the 95th percentile. A long search that runs alone is split over
/// two cores by document range.
/// </summary>
public sealed partial class Bm25Index
{
    /// <summary>Above this k, searches score every posting instead of pruning (see the type's remarks).</summary>
    public int MaxScoreMaxK { get; set; } = 32;

    // Searches running in this process right now: a search is split over two cores only when it runs alone.
    private static int _activeSearches;

    [ThreadStatic]
    private static bool _lastSearchPruned;

    [ThreadStatic]
    private static bool _lastSearchSplit;

    /// <summary>
    /// Lets a search for at most <see cref="MaxScoreMaxK"/> documents skip postings that cannot reach its top k
    /// (MaxScore). The results are those of scoring every posting. Off only to measure what it saves.
    /// </summary>
    public bool DynamicPruning { get; set; } = true;

    /// <summary>
    /// Postings (summed over the query's terms) from which a search that runs alone is split into two halves of
    /// the document range, searched on two cores and merged. 0 turns splitting off.
    /// </summary>
    public int ParallelPostings { get; set; } = 100_000;

    /// <summary>Splits large searches even while other searches run (tests, so the split path runs whatever else the process does).</summary>
    internal bool SplitEvenWhenBusy { get; set; }

    /// <summary>Whether the last search on this thread skipped postings (tests check that they exercise it).</summary>
    internal bool LastSearchPruned => _lastSearchPruned;

    /// <summary>Whether the last search on this thread was split in two halves.</summary>
    internal bool LastSearchSplit => _lastSearchSplit;

    /// <summary>
    /// The best <c>results.Length</c> documents by BM25 over the query's terms that <paramref name="filter"/>
    /// allows, best first (equal scores: lower document first). Returns how many were written.
    /// </summary>
    public int Search<TFilter>(ReadOnlySpan<char> query, Span<ScoredDoc> results, TFilter filter)
        where TFilter : IDocFilter
    {
        if (results.IsEmpty)
        {
            return 0;
        }
        _lock.EnterReadLock();
        try
        {
            if (_liveDocs == 0)
            {
                return 0;
            }
            var terms = new QueryTerms(this);
            try
            {
                _analyzer.Analyze(query, ref terms, static (term, ref q) => q.Add(term));
                var bm25 = new Bm25Scorer(_liveDocs, _totalLength, K1, B);
                Span<TermPlan> plan = stackalloc TermPlan[terms.Count];
                var planned = PlanTerms(ref terms, in bm25, plan);
                (_lastSearchPruned, _lastSearchSplit) = (false, false);
                return planned == 0 ? 0 : SearchPlanned(plan[..planned], bm25, results, filter);
            }
            finally
            {
                terms.Dispose();
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private int SearchPlanned<TFilter>(ReadOnlySpan<TermPlan> plan, Bm25Scorer bm25, Span<ScoredDoc> results, TFilter filter)
        where TFilter : IDocFilter
    {
        // Pruning and splitting need each list in document order (documents added in increasing number order).
        var prune = DynamicPruning && _ordered && results.Length <= MaxScoreMaxK;
        long postings = 0;
        foreach (ref readonly var term in plan)
        {
            postings += _postings[term.TermId].Count;
        }
        var active = Interlocked.Increment(ref _activeSearches);
        try
        {
            if (ParallelPostings <= 0 || postings < ParallelPostings || !_ordered || (active > 1 && !SplitEvenWhenBusy) || Environment.ProcessorCount < 2)
            {
                var (count, pruned) = SearchRange(prune, plan, in bm25, results, filter, 0, int.MaxValue);
                _lastSearchPruned = pruned;
                return count;
            }
            return SearchHalves(prune, plan, bm25, results, filter);
        }
        finally
        {
            Interlocked.Decrement(ref _activeSearches);
        }
    }

    private (int Count, bool Pruned) SearchRange<TFilter>(bool prune, ReadOnlySpan<TermPlan> plan, in Bm25Scorer bm25, Span<ScoredDoc> results, TFilter filter, int from, int to)
        where TFilter : IDocFilter =>
        prune ? MaxScoreRange(plan, in bm25, results, filter, from, to) : (ScoreEveryPosting(plan, in bm25, results, filter, from, to), false);

    /// <summary>
    /// The lower half of the document numbers on this thread, the upper half on the thread pool, each with its own
    /// top k; then the best k of both. The caller holds the read lock throughout, so no writer changes what either reads.
    /// </summary>
    private int SearchHalves<TFilter>(bool prune, ReadOnlySpan<TermPlan> plan, Bm25Scorer bm25, Span<ScoredDoc> results, TFilter filter)
        where TFilter : IDocFilter
    {
        var k = results.Length;
        var split = (_lastDoc / 2) + 1;
        var terms = plan.ToArray();
        var upper = ArrayPool<ScoredDoc>.Shared.Rent(k);
        var merged = ArrayPool<ScoredDoc>.Shared.Rent(k);
        try
        {
            var upperSearch = Task.Run(() => SearchRange(prune, terms, in bm25, upper.AsSpan(0, k), filter, split, int.MaxValue));
            var (lowCount, lowPruned) = SearchRange(prune, terms, in bm25, results, filter, 0, split);
            var (highCount, highPruned) = upperSearch.GetAwaiter().GetResult();
            (_lastSearchPruned, _lastSearchSplit) = (lowPruned || highPruned, true);

            // Two best-first lists; on equal scores the lower document first, as TopK.Finish orders them (every
            // document of the lower half is below every one of the upper half).
            int low = 0, high = 0, count = 0;
            while (count < k && (low < lowCount || high < highCount))
            {
                merged[count++] = high >= highCount || (low < lowCount && results[low].Score >= upper[high].Score)
                    ? results[low++]
                    : upper[high++];
            }
            merged.AsSpan(0, count).CopyTo(results);
            return count;
        }
        finally
        {
            ArrayPool<ScoredDoc>.Shared.Return(upper);
            ArrayPool<ScoredDoc>.Shared.Return(merged);
        }
    }

    /// <summary>
    /// Term at a time over every posting in [<paramref name="from"/>, <paramref name="to"/>): scores add up in a
    /// corpus-sized accumulator (from a pool whose arrays come back all-zero), then the allowed best k are kept.
    /// </summary>
    private int ScoreEveryPosting<TFilter>(ReadOnlySpan<TermPlan> plan, in Bm25Scorer bm25, Span<ScoredDoc> results, TFilter filter, int from, int to)
        where TFilter : IDocFilter
    {
        var total = 0;
        foreach (ref readonly var term in plan)
        {
            total += _postings[term.TermId].Count;
        }
        var scores = ScorePool.Rent(_docLength.Length);
        // One slot more than can be touched: the loop writes a document ahead before it knows whether it is new.
        var touched = ArrayPool<int>.Shared.Rent(Math.Min(_docLength.Length, Math.Max(64, total)) + 1);
        var touchedCount = 0;
        Span<float> single = stackalloc float[SingleTable];
        try
        {
            foreach (ref readonly var term in plan)
            {
                bm25.FillSingle(term.Weight, single);
                ref readonly var postings = ref _postings[term.TermId];
                var docs = postings.Docs.AsSpan(0, postings.Count);
                var start = from == 0 ? 0 : LowerBound(docs, from);
                var stop = to == int.MaxValue ? docs.Length : LowerBound(docs, to);
                Accumulate(docs[start..stop], postings.Frequencies.AsSpan(start, stop - start), term.Weight, in bm25, single, scores, touched, ref touchedCount);
            }
            var top = new TopK(results);
            for (var i = 0; i < touchedCount; i++)
            {
                var doc = touched[i];
                var score = scores[doc];
                if (score > top.Threshold && filter.Allows(doc))
                {
                    top.Add(doc, score);
                }
            }
            return top.Finish();
        }
        finally
        {
            for (var i = 0; i < touchedCount; i++)
            {
                scores[touched[i]] = 0;
            }
            ScorePool.Return(scores);
            ArrayPool<int>.Shared.Return(touched);
        }
    }

    /// <summary>Lengths below this get their one-occurrence score from a per-term table instead of a division.</summary>
    private const int SingleTable = 256;

    /// <summary>
    /// The hot loop: one term's postings added into the accumulator. Most postings are one occurrence in a short
    /// memory, scored by a table look-up; whether a document is new is counted without a branch (the document is
    /// written ahead and kept only if its slot was still zero), since that test is a coin toss for common terms.
    /// </summary>
    private void Accumulate(ReadOnlySpan<int> docs, ReadOnlySpan<ushort> frequencies, float weight, in Bm25Scorer bm25, ReadOnlySpan<float> single,
        float[] scores, int[] touched, ref int touchedCount)
    {
        ref var score0 = ref MemoryMarshal.GetArrayDataReference(scores);
        var lengths = _docLength;
        var count = touchedCount;
        for (var i = 0; i < docs.Length; i++)
        {
            var doc = docs[i];
            var length = lengths[doc];
            if (length == 0)
            {
                continue; // removed
            }
            var tf = frequencies[i];
            var score = tf == 1 && (uint)length < (uint)single.Length ? single[length] : bm25.Score(weight, tf, length);
            ref var slot = ref Unsafe.Add(ref score0, doc);
            touched[count] = doc;
            count += slot == 0 ? 1 : 0;
            slot += score;
        }
        touchedCount = count;
    }

    /// <summary>
    /// Document-at-a-time MaxScore (Turtle and Flood) over the documents in [<paramref name="from"/>, <paramref name="to"/>).
    /// The query's terms are ordered by their score bound, lowest first. Once the top k is full, its k-th score is a
    /// threshold; the lowest-bound terms whose bounds together stay at or below it are "non-essential": a document
    /// holding only those can never enter the top k. So candidates come only from the essential lists, and a
    /// candidate is looked up in the non-essential lists by seeking, highest bound first, only while its score plus
    /// what those lists could still add beats the threshold. Exact: only documents that provably cannot enter the
    /// top k are skipped.
    /// </summary>
    private (int Count, bool Pruned) MaxScoreRange<TFilter>(ReadOnlySpan<TermPlan> plan, in Bm25Scorer bm25, Span<ScoredDoc> results, TFilter filter, int from, int to)
        where TFilter : IDocFilter
    {
        var n = plan.Length;
        var lists = ArrayPool<int>.Shared.Rent(n); // term ids, lowest bound first
        Span<int> position = stackalloc int[n];
        Span<int> end = stackalloc int[n];
        Span<float> weight = stackalloc float[n];
        // bound[i]: the most terms 0..i together can add to any document's score.
        Span<float> bound = stackalloc float[n];
        try
        {
            for (var i = 0; i < n; i++)
            {
                ref readonly var term = ref plan[n - 1 - i]; // the plan is best bound first; here lowest first
                var docs = _postings[term.TermId].Docs.AsSpan(0, _postings[term.TermId].Count);
                lists[i] = term.TermId;
                position[i] = from == 0 ? 0 : LowerBound(docs, from);
                end[i] = to == int.MaxValue ? docs.Length : LowerBound(docs, to);
                weight[i] = term.Weight;
                bound[i] = (i == 0 ? 0 : bound[i - 1]) + term.UpperBound;
            }

            var top = new TopK(results);
            var threshold = float.NegativeInfinity;
            var essential = 0; // terms essential..n-1 supply the candidates
            while (true)
            {
                var doc = int.MaxValue;
                for (var i = essential; i < n; i++)
                {
                    if (position[i] < end[i])
                    {
                        doc = Math.Min(doc, _postings[lists[i]].Docs[position[i]]);
                    }
                }
                if (doc == int.MaxValue)
                {
                    break;
                }
                var length = _docLength[doc];
                var score = 0f;
                for (var i = essential; i < n; i++)
                {
                    var p = position[i];
                    ref readonly var postings = ref _postings[lists[i]];
                    if (p < end[i] && postings.Docs[p] == doc)
                    {
                        score += length == 0 ? 0 : bm25.Score(weight[i], postings.Frequencies[p], length);
                        position[i] = p + 1;
                    }
                }
                if (length == 0 || (essential > 0 && score + bound[essential - 1] <= threshold) || !filter.Allows(doc))
                {
                    continue; // removed, out of reach, or not allowed
                }
                for (var i = essential - 1; i >= 0; i--)
                {
                    if (score + bound[i] <= threshold)
                    {
                        break; // even every remaining term at its best would not reach the top k
                    }
                    ref readonly var postings = ref _postings[lists[i]];
                    var p = position[i] = Seek(postings.Docs.AsSpan(0, end[i]), position[i], doc);
                    if (p < end[i] && postings.Docs[p] == doc)
                    {
                        score += bm25.Score(weight[i], postings.Frequencies[p], length);
                    }
                }
                if (score <= threshold)
                {
                    continue;
                }
                top.Add(doc, score);
                if (top.Threshold > threshold)
                {
                    threshold = top.Threshold;
                    while (essential < n && bound[essential] <= threshold)
                    {
                        essential++;
                    }
                }
            }
            return (top.Finish(), essential > 0);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(lists);
        }
    }

    /// <summary>The first position at or after <paramref name="from"/> whose document is at least <paramref name="target"/> (galloping, then binary search).</summary>
    private static int Seek(ReadOnlySpan<int> docs, int from, int target)
    {
        if (from >= docs.Length || docs[from] >= target)
        {
            return from;
        }
        var low = from; // docs[low] < target
        var step = 1;
        var high = from + 1;
        while (high < docs.Length && docs[high] < target)
        {
            low = high;
            step <<= 1;
            high = low + step;
        }
        high = Math.Min(high, docs.Length);
        var found = docs[(low + 1)..high].BinarySearch(target);
        return low + 1 + (found >= 0 ? found : ~found);
    }

    /// <summary>The first position whose document is at least <paramref name="doc"/>.</summary>
    private static int LowerBound(ReadOnlySpan<int> docs, int doc)
    {
        var found = docs.BinarySearch(doc);
        return found >= 0 ? found : ~found;
    }
}
