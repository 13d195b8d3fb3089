using System.Collections.Concurrent;
using Engram.Core.Operations;
using Engram.Core.Storage;

namespace Engram.Core.Search;

/// <summary>
/// Counts which memories searches returned and writes the counts in batches, so that keeping
/// <c>last_accessed_at</c> / <c>access_count</c> current costs a search nothing but a dictionary update.
/// <para>
/// Bounded: at most <see cref="Capacity"/> distinct memories wait between two flushes (the server sizes it from the
/// memory budget, <c>MemoryBudget.AccessCounts</c>). Past it, a memory not already waiting is dropped and counted
/// (<see cref="Dropped"/>, <c>engram_bound_overflow_total{part="access_counts"}</c>); memories already waiting keep
/// counting. Dropping, not back-pressure: this runs on the search path, which must never wait on the store for
/// bookkeeping, and a lost count only leaves one memory's <c>last_accessed_at</c> older than it should be.
/// </para>
/// </summary>
public sealed class AccessTracker(TimeProvider clock)
{
    /// <summary>The default bound: about 13 MB at <see cref="EntryBytes"/> each.</summary>
    public const int MaxPending = 100_000;

    /// <summary>Estimated bytes per waiting memory (dictionary node, key tuple and count; the id string is the index's).</summary>
    public const long EntryBytes = 128;

    public const string Part = "access_counts";

    private Batch _pending = new();
    private int _capacity = MaxPending;
    private long _dropped;

    /// <summary>Distinct memories waiting for the next flush (never above <see cref="Capacity"/>).</summary>
    public int Pending => Volatile.Read(ref _pending.Count);

    /// <summary>The bound on <see cref="Pending"/>; at least 1.</summary>
    public int Capacity
    {
        get => Volatile.Read(ref _capacity);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            Volatile.Write(ref _capacity, value);
        }
    }

    /// <summary>Accesses dropped because <see cref="Capacity"/> memories were already waiting.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Record(string tenant, IEnumerable<string> ids)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var batch = Volatile.Read(ref _pending);
        var capacity = Capacity;
        long dropped = 0;
        foreach (var id in ids)
        {
            var key = (tenant, id);
            if (!batch.Map.ContainsKey(key))
            {
                // Reserve a slot first: the count, not the dictionary, is the bound, so concurrent searches cannot overshoot it.
                if (Interlocked.Increment(ref batch.Count) > capacity)
                {
                    Interlocked.Decrement(ref batch.Count);
                    dropped++;
                    continue;
                }
                if (batch.Map.TryAdd(key, new Access(1, now)))
                {
                    continue;
                }
                Interlocked.Decrement(ref batch.Count); // another search added it meanwhile: update that entry
            }
            // Entries are never removed from a batch (a flush swaps the whole batch), so this only updates.
            batch.Map.AddOrUpdate(key, static (_, now) => new Access(1, now), static (_, old, now) => new Access(old.Count + 1, Math.Max(old.LastMs, now)), now);
        }
        if (dropped > 0)
        {
            Interlocked.Add(ref _dropped, dropped);
            BoundOverflow.Count(Part, dropped);
        }
    }

    /// <summary>Writes every pending count to the store; returns how many memories were updated.</summary>
    public async Task<int> FlushAsync(IMemoryStore store, CancellationToken ct = default)
    {
        if (Volatile.Read(ref _pending.Count) == 0)
        {
            return 0;
        }
        var batch = Interlocked.Exchange(ref _pending, new Batch());
        foreach (var group in batch.Map.GroupBy(e => e.Key.Tenant))
        {
            var accesses = group.Select(e => (e.Key.Id, e.Value.Count, DateTimeOffset.FromUnixTimeMilliseconds(e.Value.LastMs))).ToList();
            await store.RecordAccessAsync(group.Key, accesses, ct).ConfigureAwait(false);
        }
        return batch.Map.Count;
    }

    private readonly record struct Access(int Count, long LastMs);

    private sealed class Batch
    {
        public readonly ConcurrentDictionary<(string Tenant, string Id), Access> Map = new();
        public int Count;
    }
}
