using System.Runtime.InteropServices;

namespace Engram.Core.Indexing;

/// <summary>A document number (the search layer's dense id for one memory version) and its score.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ScoredDoc(int Doc, float Score);

/// <summary>Decides which documents a search may return; applied before the top-k cut.</summary>
public interface IDocFilter
{
    bool Allows(int doc);
}

/// <summary>Every document.</summary>
public readonly struct AllDocs : IDocFilter
{
    public bool Allows(int doc) => true;
}

/// <summary>
/// Keeps the best k of a stream of scored documents: a min-heap of size k, so each candidate costs
/// O(log k) and nothing is allocated beyond the caller's buffer.
/// </summary>
public ref struct TopK
{
    private readonly Span<ScoredDoc> _heap;
    private int _count;

    public TopK(Span<ScoredDoc> buffer)
    {
        _heap = buffer;
        _count = 0;
    }

    public readonly int Count => _count;

    /// <summary>The lowest score kept, or -inf while fewer than k are kept: candidates at or below it can be skipped.</summary>
    public readonly float Threshold => _count < _heap.Length ? float.NegativeInfinity : _heap[0].Score;

    public void Add(int doc, float score)
    {
        if (_count < _heap.Length)
        {
            _heap[_count] = new ScoredDoc(doc, score);
            SiftUp(_count++);
        }
        else if (score > _heap[0].Score)
        {
            _heap[0] = new ScoredDoc(doc, score);
            SiftDown(0);
        }
    }

    /// <summary>Sorts the kept documents best first (ties by lower doc number) and returns how many there are.</summary>
    public int Finish()
    {
        var kept = _heap[.._count];
        kept.Sort(static (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Doc.CompareTo(b.Doc));
        return _count;
    }

    private readonly void SiftUp(int i)
    {
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            if (_heap[parent].Score <= _heap[i].Score)
            {
                break;
            }
            (_heap[parent], _heap[i]) = (_heap[i], _heap[parent]);
            i = parent;
        }
    }

    private readonly void SiftDown(int i)
    {
        while (true)
        {
            var left = (2 * i) + 1;
            if (left >= _count)
            {
                break;
            }
            var smallest = left + 1 < _count && _heap[left + 1].Score < _heap[left].Score ? left + 1 : left;
            if (_heap[i].Score <= _heap[smallest].Score)
            {
                break;
            }
            (_heap[i], _heap[smallest]) = (_heap[smallest], _heap[i]);
            i = smallest;
        }
    }
}
