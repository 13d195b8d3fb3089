using System.Collections.Concurrent;
using Engram.Core.Operations;

namespace Engram.Server.Operations;

/// <summary>
/// A hard bound on how many distinct clients a per-client structure tracks (the rate limiter's partitions, the
/// failed-authentication buckets). ASP.NET Core's partitioned limiter drops a partition only after it has been idle
/// for 10 s, so a flood of distinct addresses (an IPv6 range, a botnet) could make millions of partitions within
/// that window. Callers ask <see cref="Admit"/> first: a known key, or a new one while there is room, gets its own
/// partition; a new key while the set is full gets false and the caller puts it in one shared overflow partition,
/// counted (<c>engram_bound_overflow_total{part}</c>). Sharing, not refusing: clients beyond the bound are still
/// served and limited, together, which is what a flood of new addresses deserves, while every client already known
/// keeps its own budget. Keys idle for longer than the idle window leave the set (swept at most once a second, only
/// when it is full), so the set follows the clients that are active now.
/// </summary>
public sealed class BoundedKeySet<TKey>(string part, int capacity, TimeSpan idle) where TKey : notnull
{
    /// <summary>Estimated bytes per tracked client: this entry plus the limiter partitions it stands for.</summary>
    public const long EntryBytes = 1024;

    private readonly ConcurrentDictionary<TKey, long> _lastSeen = new();
    private readonly long _idleMs = (long)idle.TotalMilliseconds;
    private readonly Lock _sweep = new();
    private int _count;
    private long _sweptAt = long.MinValue / 2; // far in the past, without overflowing now - _sweptAt
    private long _overflowed;

    public string Part { get; } = part;

    public int Capacity { get; } = capacity >= 1 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "at least 1");

    /// <summary>Clients tracked now (at most <see cref="Capacity"/>).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Requests of new clients sent to the shared overflow slot because the set was full.</summary>
    public long Overflowed => Interlocked.Read(ref _overflowed);

    /// <summary>True when <paramref name="key"/> has (or now gets) a slot of its own; false when the set is full.</summary>
    public bool Admit(TKey key) => Admit(key, Environment.TickCount64);

    internal bool Admit(TKey key, long nowMs)
    {
        if (_lastSeen.TryGetValue(key, out var last))
        {
            if (nowMs - last >= 1000)
            {
                _lastSeen.TryUpdate(key, nowMs, last); // at most once a second per key; a sweep that removed it meanwhile wins
            }
            return true;
        }
        if (!TryReserve())
        {
            Sweep(nowMs);
            if (!TryReserve())
            {
                Interlocked.Increment(ref _overflowed);
                BoundOverflow.Count(Part);
                return false;
            }
        }
        if (!_lastSeen.TryAdd(key, nowMs))
        {
            Interlocked.Decrement(ref _count); // added by another request meanwhile
        }
        return true;
    }

    private bool TryReserve()
    {
        if (Interlocked.Increment(ref _count) <= Capacity)
        {
            return true;
        }
        Interlocked.Decrement(ref _count);
        return false;
    }

    /// <summary>Removes the keys idle for longer than the idle window; at most once a second, one sweeper at a time.</summary>
    private void Sweep(long nowMs)
    {
        if (nowMs - Interlocked.Read(ref _sweptAt) < 1000 || !_sweep.TryEnter())
        {
            return;
        }
        try
        {
            Interlocked.Exchange(ref _sweptAt, nowMs);
            foreach (var entry in _lastSeen)
            {
                if (nowMs - entry.Value > _idleMs && _lastSeen.TryRemove(entry))
                {
                    Interlocked.Decrement(ref _count);
                }
            }
        }
        finally
        {
            _sweep.Exit();
        }
    }
}
