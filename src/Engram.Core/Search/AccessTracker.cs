using System.Collections.Concurrent;
using Engram.Core.Storage;

namespace Engram.Core.Search;

/// <summary>
/// Counts which memories searches returned and writes the counts in batches, so that keeping
/// <c>last_accessed_at</c> / <c>access_count</c> current costs a search nothing but a dictionary update.
/// Bounded: past <see cref="MaxPending"/> distinct memories the oldest counts are flushed first.
/// </summary>
public sealed class AccessTracker(TimeProvider clock)
{
    public const int MaxPending = 100_000;

    private ConcurrentDictionary<(string Tenant, string Id), Access> _pending = new();

    public int Pending => _pending.Count;

    public void Record(string tenant, IEnumerable<string> ids)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (_pending.Count >= MaxPending)
        {
            return; // the flusher is behind; dropping a count beats growing without bound
        }
        foreach (var id in ids)
        {
            _pending.AddOrUpdate((tenant, id), static (_, now) => new Access(1, now), static (_, old, now) => new Access(old.Count + 1, Math.Max(old.LastMs, now)), now);
        }
    }

    /// <summary>Writes every pending count to the store; returns how many memories were updated.</summary>
    public async Task<int> FlushAsync(IMemoryStore store, CancellationToken ct = default)
    {
        if (_pending.IsEmpty)
        {
            return 0;
        }
        var batch = Interlocked.Exchange(ref _pending, new ConcurrentDictionary<(string Tenant, string Id), Access>());
        foreach (var group in batch.GroupBy(e => e.Key.Tenant))
        {
            var accesses = group.Select(e => (e.Key.Id, e.Value.Count, DateTimeOffset.FromUnixTimeMilliseconds(e.Value.LastMs))).ToList();
            await store.RecordAccessAsync(group.Key, accesses, ct).ConfigureAwait(false);
        }
        return batch.Count;
    }

    private readonly record struct Access(int Count, long LastMs);
}
