using System.Buffers;

namespace Engram.Server.Http;

/// <summary>
/// The bytes of one request body, read within a bound. A body that announces a small length gets one
/// array of that length; any other body goes into 64 KiB arrays: below the large-object heap's 85,000
/// bytes, so a big body leaves no large arrays behind, and a chunked one is never copied into a doubled
/// buffer. None comes from the shared array pool, which would keep a big one resident.
/// </summary>
internal sealed class BodyBytes
{
    public const int SegmentBytes = 64 * 1024;

    private readonly List<byte[]> _segments;
    private readonly int _lastLength;

    private BodyBytes(List<byte[]> segments, int lastLength, long length)
    {
        _segments = segments;
        _lastLength = lastLength;
        Length = length;
    }

    public long Length { get; }

    /// <summary>True when the body is one array (<see cref="Span"/>); else read it as <see cref="Sequence"/>.</summary>
    public bool IsSingleSegment => _segments.Count == 1;

    public ReadOnlySpan<byte> Span => _segments[0].AsSpan(0, _lastLength);

    /// <summary>
    /// Reads the whole body; throws the exception <paramref name="tooLarge"/> makes (given the bytes held)
    /// once more than <paramref name="limit"/> bytes arrived.
    /// </summary>
    public static async Task<BodyBytes> ReadAsync(Stream body, long? contentLength, long limit, Func<long, Exception> tooLarge, CancellationToken ct)
    {
        var segments = new List<byte[]>(1);
        var current = new byte[contentLength is { } known && known <= SegmentBytes ? (int)known : SegmentBytes];
        var filled = 0;
        long total = 0;
        while (total != contentLength)
        {
            if (filled == current.Length)
            {
                segments.Add(current);
                current = new byte[SegmentBytes];
                filled = 0;
            }
            var read = await body.ReadAsync(current.AsMemory(filled), ct);
            if (read == 0)
            {
                break;
            }
            filled += read;
            total += read;
            if (total > limit)
            {
                throw tooLarge(total);
            }
        }
        segments.Add(current);
        return new BodyBytes(segments, filled, total);
    }

    public ReadOnlySequence<byte> Sequence()
    {
        Segment? first = null;
        Segment? last = null;
        for (var i = 0; i < _segments.Count; i++)
        {
            var memory = _segments[i].AsMemory(0, i == _segments.Count - 1 ? _lastLength : _segments[i].Length);
            last = last is null ? first = new Segment(memory, 0) : last.Append(memory);
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
