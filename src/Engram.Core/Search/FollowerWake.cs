using System.Diagnostics;
using Engram.Core.Storage;

namespace Engram.Core.Search;

/// <summary>
/// When the index follower next reads the change log: as soon as a commit notification arrives, but no
/// sooner than <see cref="MinGap"/> after the previous notified read (a burst of a thousand commits then
/// costs a read per gap, not one per commit: the notifications in between only set a flag that is already
/// set), and at the latest every poll interval, notified or not (the fallback while notifications are
/// off, down or lost).
/// </summary>
public sealed class FollowerWake(ChangeSignal signal, TimeSpan pollInterval, TimeSpan minGap)
{
    /// <summary>The gap used by the server: at most 50 notified reads a second, 20 ms added to a write's way to another instance's searches at worst.</summary>
    public static readonly TimeSpan DefaultMinGap = TimeSpan.FromMilliseconds(20);

    private long _nextTick = Stopwatch.GetTimestamp();
    private long _lastNotified;
    private long _notifiedWakes;
    private long _ticks;

    public TimeSpan MinGap => minGap;

    /// <summary>Wake-ups by a notification so far.</summary>
    public long NotifiedWakes => Interlocked.Read(ref _notifiedWakes);

    /// <summary>Wake-ups by the poll interval so far.</summary>
    public long Ticks => Interlocked.Read(ref _ticks);

    /// <summary>Waits for the next reason to read the log: a notification (true) or the poll interval (false).</summary>
    public async Task<bool> WaitAsync(CancellationToken ct)
    {
        var untilTick = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _nextTick);
        if (untilTick > TimeSpan.Zero && await signal.WaitAsync(untilTick, ct).ConfigureAwait(false))
        {
            var wait = minGap - Stopwatch.GetElapsedTime(_lastNotified);
            if (_lastNotified != 0 && wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, ct).ConfigureAwait(false);
            }
            _lastNotified = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _notifiedWakes);
            return true;
        }
        _nextTick = Stopwatch.GetTimestamp() + (long)(pollInterval.TotalSeconds * Stopwatch.Frequency);
        Interlocked.Increment(ref _ticks);
        return false;
    }
}
