namespace Engram.Core.Common;

/// <summary>
/// Tells whether a time in unix milliseconds is surely still ahead, mostly without reading the wall clock. A GET from
/// memory checks its entry's expiry, and on a virtual machine the wall clock (a TSC read through the vDSO) was 3% of a
/// pipelined GET's CPU. Redis reads its clock once per event-loop turn for the same reason. The answer comes from the
/// monotonic tick count, which is far cheaper, plus the offset to the wall clock measured at the last precise reading:
/// the estimate never runs behind the wall clock by more than the tick's coarseness, and <see cref="Slack"/> covers that,
/// so "surely ahead" is never wrong. Otherwise (close to the time, or the offset over a second old) the caller reads
/// the clock. Only for <see cref="TimeProvider.System"/>: a test clock can jump, and is always read.
/// </summary>
public sealed class CheapClock(TimeProvider clock)
{
    /// <summary>How far behind the wall clock the estimate may be: the coarse tick's resolution is a few milliseconds.</summary>
    public const long Slack = 25;

    /// <summary>How long a measured offset is trusted: a wall-clock step (NTP) is noticed within this.</summary>
    public const long RefreshMs = 1000;

    private readonly bool _system = clock == TimeProvider.System;
    private long _offset; // wall-clock ms minus tick count at the last reading
    private long _measuredAt = long.MinValue / 2; // tick count of that reading

    /// <summary>The wall clock now, in unix milliseconds (a precise reading, which also refreshes the estimate).</summary>
    public long NowMs()
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (_system)
        {
            var tick = Environment.TickCount64;
            Volatile.Write(ref _offset, now - tick);
            Volatile.Write(ref _measuredAt, tick);
        }
        return now;
    }

    /// <summary>True when <paramref name="atMs"/> is surely later than now; false when it may not be (read <see cref="NowMs"/>).</summary>
    public bool SurelyAhead(long atMs)
    {
        if (!_system)
        {
            return false;
        }
        var tick = Environment.TickCount64;
        return tick - Volatile.Read(ref _measuredAt) < RefreshMs && atMs > tick + Volatile.Read(ref _offset) + Slack;
    }

    /// <summary>Whether something that expires at <paramref name="expiresAtMs"/> (null: never) is still live.</summary>
    public bool IsLive(long? expiresAtMs) => expiresAtMs is not { } expires || SurelyAhead(expires) || expires > NowMs();
}
