using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engram.Core.Indexing.Vector;

/// <summary>A node and its similarity to the query.</summary>
internal struct Candidate(float score, int node)
{
    public float Score = score;
    public int Node = node;
}

/// <summary>
/// Per-thread working memory of a graph search, reused so steady-state searches allocate nothing: the visited set
/// (generation-stamped, so starting a search is one increment, not a clear), the candidate max-heap, the result
/// min-heap and the padded copy of the query.
/// </summary>
internal sealed unsafe class SearchScratch
{
    [ThreadStatic]
    private static SearchScratch? _current;

    private ushort[] _visited = [];
    private ushort _stamp;
    private Candidate[] _candidates = new Candidate[256];
    private Candidate[] _results = new Candidate[256];
    private PinnedBlock<float> _query = new(64);
    private PinnedBlock<short> _queryCodes = new(64);
    private sbyte[] _quantized = new sbyte[64];

    public static SearchScratch Current => _current ??= new SearchScratch();

    public int CandidateCount { get; set; }

    public int ResultCount { get; set; }

    /// <summary>The result heap: element 0 is the worst kept result.</summary>
    public ReadOnlySpan<Candidate> Results => _results.AsSpan(0, ResultCount);

    public ref Candidate BestCandidate => ref _candidates[0];

    public float WorstResultScore => _results[0].Score;

    /// <summary>Starts a search over node ids below <paramref name="nodes"/>: a fresh stamp marks nothing visited.</summary>
    public ushort[] BeginVisit(int nodes, out ushort stamp)
    {
        if (_visited.Length < nodes)
        {
            _visited = new ushort[nodes + (nodes >> 1) + 1024];
            _stamp = 0;
        }
        if (++_stamp == 0)
        {
            Array.Clear(_visited);
            _stamp = 1;
        }
        CandidateCount = 0;
        ResultCount = 0;
        stamp = _stamp;
        return _visited;
    }

    public FloatSpace PrepareFloat(ReadOnlySpan<float> query, float* rows, int stride)
    {
        if (_query.Length < stride)
        {
            _query = new PinnedBlock<float>(stride);
        }
        var padded = _query.Span[..stride];
        query.CopyTo(padded);
        padded[query.Length..].Clear();
        return new FloatSpace(_query.Pointer, rows, stride);
    }

    public Int8Space PrepareInt8(ReadOnlySpan<float> query, sbyte* codes, float* scales, int stride)
    {
        EnsureCodes(stride);
        var scale = VectorKernels.Quantize(query, _quantized.AsSpan(0, query.Length));
        var widened = _queryCodes.Span[..stride];
        for (var i = 0; i < query.Length; i++)
        {
            widened[i] = _quantized[i];
        }
        widened[query.Length..].Clear();
        return new Int8Space(_queryCodes.Pointer, scale, codes, scales, stride);
    }

    /// <summary>A space whose query is stored row <paramref name="node"/> (used while inserting that node).</summary>
    public Int8Space PrepareInt8Row(int node, sbyte* codes, float* scales, int stride)
    {
        EnsureCodes(stride);
        var row = codes + ((nint)node * stride);
        var widened = _queryCodes.Pointer;
        for (var i = 0; i < stride; i++)
        {
            widened[i] = row[i];
        }
        return new Int8Space(_queryCodes.Pointer, scales[node], codes, scales, stride);
    }

    private void EnsureCodes(int stride)
    {
        if (_queryCodes.Length < stride)
        {
            _queryCodes = new PinnedBlock<short>(stride);
            _quantized = new sbyte[stride];
        }
    }

    /// <summary>Pushes onto the candidate max-heap (best candidate on top).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PushCandidate(float score, int node)
    {
        if (CandidateCount == _candidates.Length)
        {
            Array.Resize(ref _candidates, _candidates.Length * 2);
        }
        ref var heap = ref MemoryMarshal.GetArrayDataReference(_candidates);
        var i = CandidateCount++;
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            ref var p = ref Unsafe.Add(ref heap, parent);
            if (p.Score >= score)
            {
                break;
            }
            Unsafe.Add(ref heap, i) = p;
            i = parent;
        }
        Unsafe.Add(ref heap, i) = new Candidate(score, node);
    }

    /// <summary>Removes the best candidate.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PopCandidate()
    {
        ref var heap = ref MemoryMarshal.GetArrayDataReference(_candidates);
        var count = --CandidateCount;
        var last = Unsafe.Add(ref heap, count);
        var i = 0;
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= count)
            {
                break;
            }
            if (child + 1 < count && Unsafe.Add(ref heap, child + 1).Score > Unsafe.Add(ref heap, child).Score)
            {
                child++;
            }
            if (last.Score >= Unsafe.Add(ref heap, child).Score)
            {
                break;
            }
            Unsafe.Add(ref heap, i) = Unsafe.Add(ref heap, child);
            i = child;
        }
        Unsafe.Add(ref heap, i) = last;
    }

    /// <summary>Pushes onto the result min-heap (worst result on top, so it can be evicted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PushResult(float score, int node)
    {
        if (ResultCount == _results.Length)
        {
            Array.Resize(ref _results, _results.Length * 2);
        }
        ref var heap = ref MemoryMarshal.GetArrayDataReference(_results);
        var i = ResultCount++;
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            ref var p = ref Unsafe.Add(ref heap, parent);
            if (p.Score <= score)
            {
                break;
            }
            Unsafe.Add(ref heap, i) = p;
            i = parent;
        }
        Unsafe.Add(ref heap, i) = new Candidate(score, node);
    }

    /// <summary>Removes the worst result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PopResult()
    {
        ref var heap = ref MemoryMarshal.GetArrayDataReference(_results);
        var count = --ResultCount;
        var last = Unsafe.Add(ref heap, count);
        var i = 0;
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= count)
            {
                break;
            }
            if (child + 1 < count && Unsafe.Add(ref heap, child + 1).Score < Unsafe.Add(ref heap, child).Score)
            {
                child++;
            }
            if (last.Score <= Unsafe.Add(ref heap, child).Score)
            {
                break;
            }
            Unsafe.Add(ref heap, i) = Unsafe.Add(ref heap, child);
            i = child;
        }
        Unsafe.Add(ref heap, i) = last;
    }
}
