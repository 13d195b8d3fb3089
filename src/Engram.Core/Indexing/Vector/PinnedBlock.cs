using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engram.Core.Indexing.Vector;

/// <summary>
/// An array on the pinned object heap plus a 64-byte-aligned pointer into it. Pinned arrays never move, so the
/// pointer stays valid for as long as the block is referenced, and aligned rows never straddle more cache lines
/// than they must. Still garbage collected: no finaliser or Dispose needed.
/// </summary>
internal readonly unsafe struct PinnedBlock<T> where T : unmanaged
{
    private const int Alignment = 64;
    private readonly T[]? _array;

    public PinnedBlock(int length)
    {
        var slack = Alignment / sizeof(T);
        _array = GC.AllocateArray<T>(length + slack, pinned: true);
        var start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        Pointer = (T*)((start + (Alignment - 1)) & ~(nint)(Alignment - 1));
        Length = length;
    }

    public T* Pointer { get; }

    public int Length { get; }

    public Span<T> Span => new(Pointer, Length);

    /// <summary>A new block of <paramref name="length"/> elements holding the first <paramref name="keep"/> of this one.</summary>
    public PinnedBlock<T> Resize(int length, int keep)
    {
        var block = new PinnedBlock<T>(length);
        if (_array is not null && keep > 0)
        {
            Span[..keep].CopyTo(block.Span);
        }
        return block;
    }
}
