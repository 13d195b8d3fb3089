using Engram.Core.Common;
using Engram.Core.Storage;

namespace Engram.Core.KeyValue;

/// <summary>
/// A multi-key transaction (Redis's MULTI/EXEC) as a store of its own: the entries of a fixed set of keys, read in one
/// write step of the real store (<see cref="IKeyValueStore.TransactKvAsync{T}"/>), on which the transaction's commands
/// run as they would on the store (KvService over this object), while it records their changes in order. The real
/// store then makes the recorded changes, with history and change log, in the same step: no other write of any key
/// comes between the reads and the writes, and either all of the changes are written or none.
/// <para>
/// Everything completes synchronously (the tasks returned are finished), so the commands run inside the store's write
/// step. The declared keys are read up front; any other key a command touches is read when first touched, through the
/// store's <see cref="Loader"/> (a script may build key names, as standalone Redis allows), up to
/// <see cref="KvService.MaxUndeclaredKeys"/> of them. Listings (KEYS, SCAN, DBSIZE inside MULTI or a script) read the store's keys as the
/// step found them through the store's <see cref="Lister"/>, with the declared keys as the transaction has left them so
/// far; pattern deletes and history are not transaction commands. Results carry seq 0: seqs are taken when the store
/// writes the changes.
/// </para>
/// </summary>
public sealed class KvTransaction : IKeyValueStore
{
    private readonly Dictionary<string, Slot> _slots;
    private readonly List<Change> _changes = [];
    private readonly Lister? _list;
    private readonly Loader? _load;
    /// <summary>The keys in the order they were read: a savepoint knows which came after it by their count.</summary>
    private readonly List<string> _order = [];
    private long _readChars;
    /// <summary>Keys read when first touched (not declared): bounded by <see cref="KvService.MaxUndeclaredKeys"/>.</summary>
    private int _undeclared;

    /// <summary>A key's newest entry in the store's step, expired or not (null: none), and the head of its history (null: none).</summary>
    public delegate (KvEntry? Entry, long? Head) Loader(string storedKey);

    /// <summary>
    /// The store's live entries of the transaction's tenant matching <paramref name="pattern"/>, after
    /// <paramref name="afterKey"/> (null: from the first), in key (byte) order, at most <paramref name="limit"/>: as
    /// the store holds them in the transaction's step, before any of its changes.
    /// </summary>
    public delegate IReadOnlyList<KvEntry> Lister(KvGlob pattern, string? afterKey, int limit);

    /// <param name="partition">The caller as the store sees it; every key belongs to its tenant.</param>
    /// <param name="nowMs">The store's time for the whole transaction (unix ms).</param>
    /// <param name="read">Each declared key's newest entry, expired or not (null: none), and the head of its history (null: none).</param>
    /// <param name="list">The store's listing inside the step (null: listings are refused).</param>
    /// <param name="load">The store's read of a key that was not declared (null: only the declared keys can be touched).</param>
    public KvTransaction(Caller partition, long nowMs, IEnumerable<(string StoredKey, KvEntry? Entry, long? Head)> read, Lister? list = null,
        Loader? load = null)
    {
        Partition = partition;
        NowMs = nowMs;
        _list = list;
        _load = load;
        _slots = new Dictionary<string, Slot>(StringComparer.Ordinal);
        foreach (var (key, entry, head) in read)
        {
            Add(key, entry, head);
        }
    }

    private Slot Add(string storedKey, KvEntry? entry, long? head)
    {
        CountRead(ref _readChars, entry);
        var slot = new Slot(entry is not null && entry.IsLiveAt(NowMs) ? entry : null, head);
        _slots[storedKey] = slot; // (a key declared twice keeps its first place in the order)
        if (_slots.Count > _order.Count)
        {
            _order.Add(storedKey);
        }
        return slot;
    }

    /// <summary>The most characters of values one transaction may read (its working set lives in memory for the step).</summary>
    public const long MaxReadChars = 64L * 1024 * 1024;

    /// <summary>Adds the entry's value to <paramref name="chars"/>; past <see cref="MaxReadChars"/> the transaction is refused (nothing written).</summary>
    public static void CountRead(ref long chars, KvEntry? entry)
    {
        chars += entry?.ValueJson.Length ?? 0;
        if (chars > MaxReadChars)
        {
            throw new ValidationException("transaction", $"its keys hold over {MaxReadChars / (1024 * 1024)} M characters of values; a transaction reads less");
        }
    }

    public Caller Partition { get; }

    public long NowMs { get; }

    /// <summary>The changes in the order the commands made them: what the store writes.</summary>
    public IReadOnlyList<Change> Changes => _changes;

    /// <summary>
    /// The head of the key's history when the transaction read it (0: none): every change of a key (set, delete, expiry,
    /// an expired entry swept) adds a history entry, so a different head means the key was touched (Redis's WATCH).
    /// </summary>
    public long HeadAtStart(string storedKey) => Find(storedKey).HeadAtStart ?? 0;

    /// <summary>When the key, live when the transaction read it, expires (null: missing then, or no expiry).</summary>
    public long? ExpiryAtStart(string storedKey) => Find(storedKey).AsRead?.ExpiresAtMs;

    /// <summary>The state of the working set at a point (its entries, how many keys were read and how many changes were recorded).</summary>
    public sealed record Savepoint(int Changes, int Keys, IReadOnlyList<(string StoredKey, KvEntry? Live)> Entries);

    /// <summary>Where the transaction is now (a script inside EXEC that fails must leave nothing of itself).</summary>
    public Savepoint Save() => new(_changes.Count, _order.Count, [.. _slots.Select(s => (s.Key, s.Value.Live))]);

    /// <summary>Undoes every change recorded after <paramref name="savepoint"/>, to keys read before it and after it.</summary>
    public void RollBack(Savepoint savepoint)
    {
        foreach (var (key, live) in savepoint.Entries)
        {
            _slots[key].Live = live;
        }
        for (var i = savepoint.Keys; i < _order.Count; i++)
        {
            var slot = _slots[_order[i]];
            slot.Live = slot.AsRead;
        }
        _changes.RemoveRange(savepoint.Changes, _changes.Count - savepoint.Changes);
    }

    /// <summary>One change to write: a set (with its history event), a delete or a new expiry of a live entry.</summary>
    public readonly record struct Change(string StoredKey, KvChangeKind Kind, string? ValueJson, long? ExpiresAtMs, string Event);

    private sealed class Slot(KvEntry? live, long? headAtStart)
    {
        public KvEntry? Live { get; set; } = live;

        /// <summary>The live entry as the store held it when the key was read.</summary>
        public KvEntry? AsRead { get; } = live;

        public long? HeadAtStart { get; } = headAtStart;
    }

    private Slot Find(string storedKey)
    {
        if (_slots.TryGetValue(storedKey, out var slot))
        {
            return slot;
        }
        if (_load is not null)
        {
            if (++_undeclared > KvService.MaxUndeclaredKeys)
            {
                throw new ValidationException("key", $"the transaction touches more than {KvService.MaxUndeclaredKeys} keys it did not declare; nothing was written");
            }
            var (entry, head) = _load(storedKey);
            return Add(storedKey, entry, head);
        }
        throw new ValidationException("key",
            $"key '{KvKeys.ToDisplay(Partition.Tenant, storedKey)}' is not among the keys the transaction declared");
    }

    private KvEntry? Live(string storedKey)
    {
        var live = Find(storedKey).Live;
        return live is not null && live.IsLiveAt(NowMs) ? live : null;
    }

    private void Write(string storedKey, string valueJson, long? expiresAtMs, string historyEvent)
    {
        var slot = Find(storedKey);
        var live = Live(storedKey);
        slot.Live = new KvEntry(storedKey, valueJson, expiresAtMs, (slot.Live?.Version ?? 0) + 1, live?.CreatedAtMs ?? NowMs, NowMs);
        _changes.Add(new Change(storedKey, KvChangeKind.Set, valueJson, expiresAtMs, historyEvent));
    }

    private bool Delete(string storedKey)
    {
        if (Live(storedKey) is null)
        {
            return false;
        }
        Find(storedKey).Live = null;
        _changes.Add(new Change(storedKey, KvChangeKind.Delete, null, null, KvEvents.Deleted));
        return true;
    }

    private bool Expire(string storedKey, long? expiresAtMs)
    {
        if (Live(storedKey) is not { } live)
        {
            return false;
        }
        Find(storedKey).Live = live with { ExpiresAtMs = expiresAtMs, Version = live.Version + 1, UpdatedAtMs = NowMs };
        _changes.Add(new Change(storedKey, KvChangeKind.Expire, null, expiresAtMs, KvEvents.TtlChanged));
        return true;
    }

    private KvSetResult SetOne(KvWrite write)
    {
        var live = Live(write.StoredKey);
        KvWrites.CheckCondition(Partition, write, live is not null);
        Write(write.StoredKey, write.ValueJson, write.ExpiresAtMs, live is null ? KvEvents.Created : KvEvents.Updated);
        return new KvSetResult(live is null, Find(write.StoredKey).Live!.Version, 0);
    }

    // ---- IKeyValueStore over the working set ---------------------------------------------------------------

    // A transaction's writes run one after another on its own view: afterWritesUnderWay holds by itself.
    public Task<KvSetResult> SetKvAsync(Caller caller, KvWrite write, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        Task.FromResult(SetOne(write));

    public Task<IReadOnlyList<KvSetResult>> SetManyKvAsync(Caller caller, IReadOnlyList<KvWrite> writes, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default)
    {
        // All or none, as in the store: every condition is judged before anything is written (on the state the
        // earlier writes of the batch leave, which only matters for a key written twice).
        var changesBefore = _changes.Count;
        var saved = writes.Select(w => (w.StoredKey, Find(w.StoredKey).Live)).ToList();
        try
        {
            return Task.FromResult<IReadOnlyList<KvSetResult>>([.. writes.Select(SetOne)]);
        }
        catch
        {
            foreach (var (key, live) in Enumerable.Reverse(saved))
            {
                Find(key).Live = live;
            }
            _changes.RemoveRange(changesBefore, _changes.Count - changesBefore);
            throw;
        }
    }

    public Task<KvEntry?> GetKvAsync(Caller caller, string storedKey, CancellationToken ct = default) => Task.FromResult(Live(storedKey));

    public bool ReadsKvWithoutBlocking(Caller caller, string storedKey) => true;

    public bool TryGetKvFromMemory(Caller caller, ReadOnlySpan<char> storedKey, out KvEntry? entry)
    {
        entry = Live(storedKey.ToString());
        return true;
    }

    public Task<IReadOnlyList<KvEntry?>> GetManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, CancellationToken ct = default) =>
        Task.FromResult<IReadOnlyList<KvEntry?>>([.. storedKeys.Select(Live)]);

    public Task<bool> DeleteKvAsync(Caller caller, string storedKey, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        Task.FromResult(Delete(storedKey));

    public Task<int> DeleteManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        Task.FromResult(storedKeys.Count(Delete));

    public Task<long> IncrementKvAsync(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, WriteDurability durability, bool textIntegers = false,
        bool afterWritesUnderWay = false, CancellationToken ct = default)
    {
        var live = Live(storedKey);
        var next = KvWrites.Increment(Partition, storedKey, live, by, textIntegers);
        Write(storedKey, next.ToString(System.Globalization.CultureInfo.InvariantCulture), live is null ? expiresAtMsIfNew : live.ExpiresAtMs, KvEvents.Incremented);
        return Task.FromResult(next);
    }

    public Task<bool> ExpireKvAsync(Caller caller, string storedKey, long? expiresAtMs, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        Task.FromResult(Expire(storedKey, expiresAtMs));

    public Task<KvUpdated> UpdateKvAsync(Caller caller, string storedKey, Func<KvEntry?, long, KvChange> decide, WriteDurability durability,
        bool afterWritesUnderWay = false, CancellationToken ct = default)
    {
        var live = Live(storedKey);
        var change = decide(live, NowMs);
        var changed = false;
        switch (change.Kind)
        {
            case KvChangeKind.Set:
                Write(storedKey, change.ValueJson!, change.ExpiresAtMs, live is null ? KvEvents.Created : KvEvents.Updated);
                changed = true;
                break;
            case KvChangeKind.Delete:
                changed = Delete(storedKey);
                break;
            case KvChangeKind.Expire:
                changed = Expire(storedKey, change.ExpiresAtMs);
                break;
        }
        return Task.FromResult(new KvUpdated(live, changed));
    }

    public Task<KvStoredPage> ListKvAsync(Caller caller, KvGlob pattern, int limit, string? afterKey, CancellationToken ct = default)
    {
        if (_list is null)
        {
            throw NotInTransaction("listing keys");
        }
        // The declared keys in the page's range are taken from the working set (changed or not), the others from the
        // store. Asking the store for as many more keys as there are declared ones leaves a full page however many of
        // them the transaction deleted.
        var declared = _slots.Where(s => (afterKey is null || KvKeys.CompareStored(s.Key, afterKey) > 0) && pattern.Matches(s.Key)).ToList();
        var asked = limit + declared.Count + 1;
        var stored = _list(pattern, afterKey, asked);
        _readChars += stored.Sum(e => (long)e.StoredKey.Length);
        if (_readChars > MaxReadChars)
        {
            throw new ValidationException("transaction", $"its keys and listings read over {MaxReadChars / (1024 * 1024)} M characters; a transaction reads less");
        }
        var merged = new List<KvEntry>(stored.Count + declared.Count);
        merged.AddRange(stored.Where(e => !_slots.ContainsKey(e.StoredKey)));
        merged.AddRange(declared.Select(s => s.Value.Live).OfType<KvEntry>().Where(e => e.IsLiveAt(NowMs)));
        merged.Sort(static (a, b) => KvKeys.CompareStored(a.StoredKey, b.StoredKey));
        if (merged.Count <= limit)
        {
            // Only when the store's answer was short (a full one leaves more than a page after dropping the declared keys):
            // nothing follows.
            return Task.FromResult(new KvStoredPage(merged, null));
        }
        // A full answer may stop before the end of the keys: the cut falls at or before its last key, so the declared keys
        // past it, sorted behind, go to a later page.
        merged.RemoveRange(limit, merged.Count - limit);
        return Task.FromResult(new KvStoredPage(merged, merged[^1].StoredKey));
    }

    /// <summary>Counted from the listing, so the transaction's own changes so far count (as KEYS shows them).</summary>
    public async Task<KvCount> CountKvAsync(Caller caller, KvGlob pattern, CancellationToken ct = default)
    {
        long keys = 0, expiring = 0;
        double ttl = 0;
        string? after = null;
        do
        {
            var page = await ListKvAsync(caller, pattern, 1000, after, ct).ConfigureAwait(false); // completes at once: the step is synchronous
            foreach (var entry in page.Items)
            {
                keys++;
                if (entry.ExpiresAtMs is { } at)
                {
                    expiring++;
                    ttl += at - NowMs;
                }
            }
            after = page.LastKey;
        }
        while (after is not null);
        return new KvCount(keys, expiring, expiring == 0 ? 0 : (long)Math.Round(ttl / expiring));
    }

    public Task<KvDeleteStep> DeleteMatchingKvAsync(Caller caller, KvGlob pattern, string? afterKey, TimeSpan budget, WriteDurability durability,
        CancellationToken ct = default) => throw NotInTransaction("deleting keys by pattern");

    public Task<KvHistoryPage> GetKvHistoryAsync(Caller caller, string storedKey, int limit, long? from, long maxValueChars, CancellationToken ct = default) =>
        throw NotInTransaction("reading a key's history");

    public Task<KvHistoryPruning> PruneKvHistoryAsync(long beforeMs, long afterHistoryId, int max, CancellationToken ct = default) =>
        throw NotInTransaction("pruning history");

    public Task<int> DeleteExpiredKvAsync(int max, CancellationToken ct = default) => throw NotInTransaction("sweeping expired keys");

    public Task SyncKvAsync(CancellationToken ct = default) => throw NotInTransaction("waiting for the disk");

    public Task<T> TransactKvAsync<T>(Caller caller, IReadOnlyCollection<string> storedKeys, Func<KvTransaction, T> run, WriteDurability durability,
        CancellationToken ct = default) => throw NotInTransaction("a nested transaction");

    private static ValidationException NotInTransaction(string what) => new("command", $"{what} is not possible inside a transaction (MULTI)");
}
