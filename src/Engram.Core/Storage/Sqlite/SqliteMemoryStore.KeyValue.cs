using System.Globalization;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Key-value state on the same writer as memories: a KV write joins the same group commit, and its
/// history row and change-log entry (entity "kv") commit together. The entry itself is written
/// behind: its new state waits in <see cref="SqliteKvWriteBehind"/>, which readers consult before
/// <c>kv_entries</c>, and is folded into the table later. Every statement filters on the caller's
/// tenant; an entry past its expiry is treated as missing everywhere.
/// <para>
/// A key's history is a chain, not an index: each history row points at the key's previous one
/// (<c>prev_hid</c>) and the entry holds the newest (<c>last_hid</c>; after a delete,
/// <c>kv_deleted</c> does). History rows are then pure appends, and a SET dirties one random B-tree
/// page (its entry) instead of two: measured 89 → 64 µs of server CPU per HTTP SET (bench/README.md).
/// </para>
/// </summary>
public sealed partial class SqliteMemoryStore : IKeyValueStore
{
    private const string KvLive = "(expires_at IS NULL OR expires_at > ?3)";

    /// <summary>Key-value states written behind and not folded into kv_entries yet (tests, diagnostics).</summary>
    internal int KvWaitingStates => _kvHot.Count;

    /// <summary>Key states the write-behind has written to the tables by flushes and folds (tests).</summary>
    internal long KvStatesWrittenToTable => _kvHot.StatesWritten;

    /// <summary>States readers find in memory: the waiting ones and the clean ones kept (tests, the memory report).</summary>
    public int KvReadableStates => _kvHot.ReadableCount;

    /// <summary>The key states held in memory, as <c>/v1/admin/memory</c> and <c>engram_bound_overflow_total</c> name them.</summary>
    public const string KvStatesPart = "kv_states";

    /// <summary>The estimated bytes of the key states held in memory (<see cref="KvReadableStates"/>).</summary>
    public long KvCacheBytes => _kvHot.CacheBytes;

    /// <summary>The bound of <see cref="KvCacheBytes"/> past which clean states are dropped (Engram:KeyValue:CacheMB).</summary>
    public long KvCacheBytesLimit
    {
        get => _kvHot.CacheBytesLimit;
        set => _kvHot.CacheBytesLimit = value;
    }

    /// <summary>Drops the clean key states (the table has them); returns how many. States waiting to be folded stay.</summary>
    public int ClearKvCache() => _kvHot.DropClean(0);

    /// <summary>Drops clean key states until the estimate is at most <paramref name="keepBytes"/> (tests).</summary>
    internal int DropKvCacheTo(long keepBytes) => _kvHot.DropClean(keepBytes);

    /// <summary>The estimate <see cref="KvCacheBytes"/> counted again from every state held (tests).</summary>
    internal long RecountKvCacheBytes() => _kvHot.RecountCacheBytes();

    public Task<KvSetResult> SetKvAsync(Caller caller, KvWrite write, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null && _journal.TryAppend(caller, [write], NowMs, out var journaled)
            ? Task.FromResult(journaled![0])
            : _writer.WriteAsync(c => SetOne(c, caller, write, NowMs), durability, ct);

    public Task<IReadOnlyList<KvSetResult>> SetManyKvAsync(Caller caller, IReadOnlyList<KvWrite> writes, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null && _journal.TryAppend(caller, writes, NowMs, out var journaled)
            ? Task.FromResult<IReadOnlyList<KvSetResult>>(journaled!)
            : SetThroughWriterAsync(caller, writes, durability, ct);

    private Task<IReadOnlyList<KvSetResult>> SetThroughWriterAsync(Caller caller, IReadOnlyList<KvWrite> writes, WriteDurability durability, CancellationToken ct) =>
        _writer.WriteAsync<IReadOnlyList<KvSetResult>>(c =>
        {
            var now = NowMs;
            using var seqs = ReserveKvSeqs(c, writes.Count);
            using var rows = CollectKvHistory(writes.Count);
            var results = new KvSetResult[writes.Count];
            for (var i = 0; i < results.Length; i++)
            {
                results[i] = SetOne(c, caller, writes[i], now);
            }
            _kvRows.Insert(c);
            return results;
        }, durability, ct);

    /// <summary>
    /// Applies journaled SETs (<see cref="SqliteKvJournal"/>) in the writer's transaction, in order, as the writer applies any
    /// SET: each from the key's state in the tables and the write-behind at this moment, at the time it was acknowledged.
    /// </summary>
    private void ApplyJournal(SqliteConnection c, List<SqliteKvJournal.Record> records)
    {
        using var seqs = ReserveKvSeqs(c, records.Count);
        using var rows = CollectKvHistory(records.Count);
        for (var i = 0; i < records.Count;)
        {
            i = ApplyJournalRun(c, records, i);
        }
        _kvRows.Insert(c);
        var newest = records[^1].Jsn;
        c.ExecuteNonQuery("INSERT INTO store_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            SqliteKvJournal.AppliedKey, newest.ToString(CultureInfo.InvariantCulture));
        _kvHot.AppliedJournal(newest);
    }

    /// <summary>
    /// Applies the records from <paramref name="start"/> on that change one key one after another (a hot key's SETs, from a
    /// pipeline or many clients), each as the writer's own command would (<see cref="SetOne"/>, the increment's
    /// <see cref="WriteKv"/>, <see cref="DeleteKv"/>, <see cref="ExpireKv"/>), but stages only the last state: no one sees the
    /// states between (readers see the journal's until the commit publishes the last), and each would cost an entry, a
    /// state and two look-ups. Returns the index after the run.
    /// </summary>
    private int ApplyJournalRun(SqliteConnection c, List<SqliteKvJournal.Record> records, int start)
    {
        var tenant = records[start].Caller.Tenant;
        var key = records[start].Write.StoredKey;
        var (current, head) = CurrentKv(c, tenant, key);
        var exists = current is not null;
        var version = current?.Version ?? 0;
        var createdAt = current?.CreatedAtMs ?? 0;
        var updatedAt = current?.UpdatedAtMs ?? 0;
        var expiresAt = current?.ExpiresAtMs;
        var json = current?.ValueJson;
        long firstHid = 0, hid = 0, seq = 0;
        var end = start;
        for (; end < records.Count; end++)
        {
            var (_, caller, write, at, kind) = records[end];
            if (end > start && !(caller.Tenant == tenant && write.StoredKey == key))
            {
                break;
            }
            var live = exists && (expiresAt is not { } expires || expires > at); // KvEntry.IsLiveAt
            switch (kind)
            {
                case SqliteKvJournal.RecordKind.Deleted:
                    if (!live)
                    {
                        continue; // a DEL of a key that is not live writes nothing (the journal records none: a safeguard)
                    }
                    seq = NextKvSeq(c, tenant, key, ChangeRecord.Delete, at);
                    hid = AppendKvHistory(c, caller, key, seq, KvEvents.Deleted, at, version, null, expiresAt, head);
                    exists = false;
                    version = 0; // a SET after the delete starts again at 1, as CurrentKv finds no entry
                    json = null;
                    break;
                case SqliteKvJournal.RecordKind.TtlChanged:
                    if (!live)
                    {
                        continue;
                    }
                    version++;
                    seq = NextKvSeq(c, tenant, key, ChangeRecord.Upsert, at);
                    hid = AppendKvHistory(c, caller, key, seq, KvEvents.TtlChanged, at, version, null, write.ExpiresAtMs, head);
                    expiresAt = write.ExpiresAtMs;
                    updatedAt = at;
                    break;
                default:
                    KvWrites.CheckCondition(caller, write, live);
                    version++;
                    createdAt = live ? createdAt : at;
                    seq = NextKvSeq(c, tenant, key, ChangeRecord.Upsert, at);
                    var historyEvent = kind == SqliteKvJournal.RecordKind.Incremented ? KvEvents.Incremented : live ? KvEvents.Updated : KvEvents.Created;
                    hid = AppendKvHistory(c, caller, key, seq, historyEvent, at, version, write.ValueJson, write.ExpiresAtMs, head);
                    exists = true;
                    expiresAt = write.ExpiresAtMs;
                    json = write.ValueJson;
                    updatedAt = at;
                    break;
            }
            firstHid = firstHid == 0 ? hid : firstHid;
            head = hid;
        }
        if (firstHid != 0)
        {
            _kvHot.Stage(new KvSlot(tenant, key), exists ? new KvEntry(key, json!, expiresAt, version, createdAt, updatedAt, hid) : null, hid, seq, firstHid);
        }
        return end;
    }

    /// <summary>
    /// Returns once every SET journaled so far is in the tables (an item that touches key states applies them first): before
    /// something reads the database file itself (a backup).
    /// </summary>
    public Task ApplyKvJournalAsync(CancellationToken ct = default) =>
        _journal is { Pending: > 0 } ? _writer.WriteAsync(static _ => 0, WriteDurability.Relaxed, ct) : Task.CompletedTask;

    public long JournaledSets => _journal is { } journal ? journal.Appended - journal.Increments - journal.Deletes - journal.TtlChanges : 0;

    public long JournaledIncrements => _journal?.Increments ?? 0;

    public long JournaledDeletes => _journal?.Deletes ?? 0;

    public long JournaledExpiryChanges => _journal?.TtlChanges ?? 0;

    public int JournalPending => _journal?.Pending ?? 0;

    public long KeyFilterBytes => _kvHot.KeyFilterBytes;

    /// <summary>Builds the key filter anew on the writer's thread and returns how long that took (the benchmark's).</summary>
    internal Task<TimeSpan> RebuildKvKeyFilterAsync() =>
        _writer.WriteAsync(c =>
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            _kvHot.RebuildKeys(c);
            return System.Diagnostics.Stopwatch.GetElapsedTime(started);
        }, WriteDurability.Relaxed);

    /// <summary>The key-value journal, when this process owns it (tests, diagnostics).</summary>
    internal SqliteKvJournal? KvJournal => _journal;

    /// <summary>The lock journaled SETs and the writer's key-value groups take (tests hold the writer back with it).</summary>
    internal Lock KvStateLock => _kvHot.StateLock;

    /// <summary>
    /// An item that writes nothing, acknowledged as a full-durability write is: after a sync of the WAL, which holds every
    /// frame committed before it (the writer runs items in order, so every write acknowledged before the call is among them).
    /// </summary>
    public Task SyncKvAsync(CancellationToken ct = default) => _writer.WriteAsync(static _ => 0, WriteDurability.Full, ct);

    /// <summary>The WAL syncs made so far (tests).</summary>
    internal long WalSyncs => _writer.WalSyncs;

    public Task<KvEntry?> GetKvAsync(Caller caller, string storedKey, CancellationToken ct = default) =>
        KvLeftoverWaits() ? GetKvAfterLeftoverAsync(caller, storedKey, ct)
        : TryGetKvFromMemory(caller, storedKey, out var entry)
            ? Task.FromResult(entry)
            : _readers.ReadAsync(c => LiveOrNull(ReadKvState(c, new KvSlot(caller.Tenant, storedKey))?.Entry, NowMs), ct).AsTask();

    /// <summary>
    /// Set when the open could not apply the acknowledged SETs a crash left in the journal: they are not in the states readers
    /// see (the tables, and the cache loaded from them), so a read would answer what the key held before them. Key reads
    /// are refused (503) until the writer, which keeps trying, has applied them; listings, counts and history apply
    /// waiting records first anyway, and fail with that apply.
    /// </summary>
    private volatile bool _kvLeftoverWaits;

    private bool KvLeftoverWaits()
    {
        if (!_kvLeftoverWaits)
        {
            return false;
        }
        if (_journal is { Pending: > 0 })
        {
            return true;
        }
        _kvLeftoverWaits = false; // applied: never set again in this process
        return false;
    }

    private async Task<KvEntry?> GetKvAfterLeftoverAsync(Caller caller, string storedKey, CancellationToken ct)
    {
        await ApplyLeftoverOrThrowAsync(ct).ConfigureAwait(false);
        return await GetKvAsync(caller, storedKey, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Tries the leftover once more for a read that waits on it (the writer otherwise tries at the next key-value write):
    /// the read goes on once it is applied, else it is refused. The cause is in the store's notice and the log, not here (a
    /// statement's error may hold SQL text).
    /// </summary>
    private async Task ApplyLeftoverOrThrowAsync(CancellationToken ct)
    {
        try
        {
            await ApplyKvJournalAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw LeftoverWaitsException();
        }
        if (KvLeftoverWaits())
        {
            throw LeftoverWaitsException();
        }
    }

    private StoreException LeftoverWaitsException() => new(
        $"key-value reads wait until the {_journal?.Pending} acknowledged write(s) the key-value journal kept from before the last stop are applied " +
        "(the store's notices say why they are not yet; the writer keeps trying)");

    /// <summary>A key's state as the tables hold it, read by a reader that did not find it in memory, and kept there for the next read.</summary>
    private KvHot? ReadKvState(SqliteConnection c, KvSlot slot)
    {
        if (!_kvHot.MayHold(slot.Tenant, slot.Key))
        {
            return null; // never written: nothing to read, nor to remember
        }
        var evictions = _kvHot.EvictionsSoFar;
        var state = SqliteKvWriteBehind.Load(c, slot);
        AfterKvReadForTests?.Invoke();
        _kvHot.Remember(slot, state, evictions);
        return state;
    }

    /// <summary>Runs between a reader's table read and its <see cref="SqliteKvWriteBehind.Remember"/>: tests hold a reader there.</summary>
    internal Action? AfterKvReadForTests { get; set; }

    /// <summary>Only a key whose state is held in memory: any other read is a synchronous SQLite query.</summary>
    public bool ReadsKvWithoutBlocking(Caller caller, string storedKey) =>
        !_kvLeftoverWaits && (_kvHot.TryGetCommitted(new KvSlot(caller.Tenant, storedKey), out _) || !_kvHot.MayHold(caller.Tenant, storedKey));

    public bool TryGetKvFromMemory(Caller caller, ReadOnlySpan<char> storedKey, out KvEntry? entry)
    {
        if (_kvLeftoverWaits && KvLeftoverWaits())
        {
            entry = null;
            return false; // the caller reads through GetKvAsync, which says why it cannot
        }
        if (_kvHot.TryGetCommitted(caller.Tenant, storedKey, out var hot))
        {
            entry = hot.Entry is { } found && _expiryClock.IsLive(found.ExpiresAtMs) ? found : null;
            return true;
        }
        entry = null;
        return !_kvHot.MayHold(caller.Tenant, storedKey); // a key never written is missing without a read
    }

    public Task<IReadOnlyList<KvEntry?>> GetManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, CancellationToken ct = default) =>
        KvLeftoverWaits() ? GetManyKvAfterLeftoverAsync(caller, storedKeys, ct) :
        _readers.ReadAsync<IReadOnlyList<KvEntry?>>(c =>
        {
            var now = NowMs;
            return [.. storedKeys.Select(k =>
            {
                var slot = new KvSlot(caller.Tenant, k);
                return LiveOrNull(_kvHot.TryGetCommitted(slot, out var hot) ? hot.Entry : ReadKvState(c, slot)?.Entry, now);
            })];
        }, ct).AsTask();

    private async Task<IReadOnlyList<KvEntry?>> GetManyKvAfterLeftoverAsync(Caller caller, IReadOnlyList<string> storedKeys, CancellationToken ct)
    {
        await ApplyLeftoverOrThrowAsync(ct).ConfigureAwait(false);
        return await GetManyKvAsync(caller, storedKeys, ct).ConfigureAwait(false);
    }

    public Task<bool> DeleteKvAsync(Caller caller, string storedKey, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null && _journal.TryDelete(caller, [storedKey], NowMs, out var deleted)
            ? deleted == 1 ? TrueTask : FalseTask
            : _writer.WriteAsync(c =>
        {
            var now = NowMs;
            if (LiveOrNull(CurrentKv(c, caller.Tenant, storedKey).Entry, now) is not { } entry)
            {
                return false;
            }
            DeleteKv(c, caller, entry, KvEvents.Deleted, now);
            return true;
        }, durability, ct);

    private static readonly Task<bool> TrueTask = Task.FromResult(true);
    private static readonly Task<bool> FalseTask = Task.FromResult(false);

    public Task<int> DeleteManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        // Journaled as one batch (every key's state in memory), else one item of the single writer: every key's state read
        // and deleted with nothing between them.
        durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null && _journal.TryDelete(caller, storedKeys, NowMs, out var journaled)
            ? Task.FromResult(journaled)
            : _writer.WriteAsync(c =>
        {
            var now = NowMs;
            var doomed = new List<KvEntry>(storedKeys.Count);
            foreach (var key in storedKeys)
            {
                if (LiveOrNull(CurrentKv(c, caller.Tenant, key).Entry, now) is { } entry)
                {
                    doomed.Add(entry);
                }
            }
            using var seqs = ReserveKvSeqs(c, doomed.Count);
            using var rows = CollectKvHistory(doomed.Count); // the history rows inserted together, as a transaction's are
            foreach (var entry in doomed)
            {
                DeleteKv(c, caller, entry, KvEvents.Deleted, now);
            }
            _kvRows.Insert(c);
            return doomed.Count;
        }, durability, ct);

    public Task<long> IncrementKvAsync(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, WriteDurability durability, bool textIntegers = false,
        bool afterWritesUnderWay = false, CancellationToken ct = default)
    {
        if (durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null)
        {
            try
            {
                if (_journal.TryIncrement(caller, storedKey, by, expiresAtMsIfNew, textIntegers, NowMs, out var value))
                {
                    return Task.FromResult(value);
                }
            }
            catch (ConflictException ex)
            {
                return Task.FromException<long>(ex); // a task, as the writer's answer: a RESP pipeline replies in order
            }
        }
        return IncrementThroughWriterAsync(caller, storedKey, by, expiresAtMsIfNew, durability, textIntegers, ct);
    }

    private Task<long> IncrementThroughWriterAsync(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, WriteDurability durability,
        bool textIntegers, CancellationToken ct) =>
        _writer.WriteAsync(c =>
        {
            var now = NowMs;
            var (current, head) = CurrentKv(c, caller.Tenant, storedKey);
            var live = current is not null && current.IsLiveAt(now);
            var next = KvWrites.Increment(caller, storedKey, live ? current : null, by, textIntegers);
            var json = next.ToString(CultureInfo.InvariantCulture);
            var expires = live ? current!.ExpiresAtMs : expiresAtMsIfNew;
            WriteKv(c, caller, storedKey, json, expires, current, head, live, KvEvents.Incremented, now);
            return next;
        }, durability, ct);

    public Task<bool> ExpireKvAsync(Caller caller, string storedKey, long? expiresAtMs, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null
            && _journal.TryUpdate(caller, storedKey, (live, _) => live is null ? KvChange.Keep : KvChange.ExpireAt(expiresAtMs), NowMs, out var journaled)
            ? journaled.Changed ? TrueTask : FalseTask
            : _writer.WriteAsync(c =>
        {
            var now = NowMs;
            if (LiveOrNull(CurrentKv(c, caller.Tenant, storedKey).Entry, now) is not { } entry)
            {
                return false;
            }
            ExpireKv(c, caller, entry, expiresAtMs, now);
            return true;
        }, durability, ct);

    public Task<KvUpdated> UpdateKvAsync(Caller caller, string storedKey, Func<KvEntry?, long, KvChange> decide, WriteDurability durability,
        bool afterWritesUnderWay = false, CancellationToken ct = default)
    {
        if (durability == WriteDurability.Relaxed && !afterWritesUnderWay && _journal is not null)
        {
            // A delete or a new expiry (or nothing) decided on the state readers see, under the state lock: journaled.
            try
            {
                if (_journal.TryUpdate(caller, storedKey, decide, NowMs, out var journaled))
                {
                    return Task.FromResult(journaled);
                }
            }
            catch (Exception ex)
            {
                return Task.FromException<KvUpdated>(ex); // the decision refused (nothing written), answered as the writer's would be
            }
        }
        return UpdateThroughWriterAsync(caller, storedKey, decide, durability, ct);
    }

    private Task<KvUpdated> UpdateThroughWriterAsync(Caller caller, string storedKey, Func<KvEntry?, long, KvChange> decide, WriteDurability durability,
        CancellationToken ct) =>
        // One item of the single writer: nothing else writes between the read and the write.
        _writer.WriteAsync(c =>
        {
            var now = NowMs;
            var (current, head) = CurrentKv(c, caller.Tenant, storedKey);
            var live = LiveOrNull(current, now);
            var change = decide(live, now);
            switch (change.Kind)
            {
                case KvChangeKind.Set:
                    WriteKv(c, caller, storedKey, change.ValueJson!, change.ExpiresAtMs, current, head, live is not null,
                        live is null ? KvEvents.Created : KvEvents.Updated, now);
                    return new KvUpdated(live, true);
                case KvChangeKind.Delete when live is not null:
                    DeleteKv(c, caller, live, KvEvents.Deleted, now);
                    return new KvUpdated(live, true);
                case KvChangeKind.Expire when live is not null:
                    ExpireKv(c, caller, live, change.ExpiresAtMs, now);
                    return new KvUpdated(live, true);
                default:
                    return new KvUpdated(live, false);
            }
        }, durability, ct);

    public Task<T> TransactKvAsync<T>(Caller caller, IReadOnlyCollection<string> storedKeys, Func<KvTransaction, T> run, WriteDurability durability,
        CancellationToken ct = default) =>
        // One item of the single writer: the reads, the commands and the writes with nothing between them.
        _writer.WriteAsync(c =>
        {
            var now = NowMs;
            // Read as the transaction takes them, so its bound on the values read stops the reading too.
            HashSet<string>? flushed = null; // prefixes whose waiting states are in the table already (made by a first listing: most transactions list nothing)
            var transaction = new KvTransaction(caller, now, storedKeys.Select(key =>
            {
                var (entry, head) = CurrentKv(c, caller.Tenant, key);
                return (key, entry, head);
            }), (pattern, afterKey, limit) =>
            {
                if ((flushed ??= new HashSet<string>(StringComparer.Ordinal)).Add(pattern.Prefix))
                {
                    FlushKv(c, caller.Tenant, pattern); // the listing reads kv_entries, as ListKvAsync's does
                }
                return SelectMatching(c, caller.Tenant, pattern, afterKey, limit, now);
            }, key => CurrentKv(c, caller.Tenant, key));
            var result = run(transaction);
            using var seqs = ReserveKvSeqs(c, transaction.Changes.Count);
            using var rows = CollectKvHistory(transaction.Changes.Count);
            foreach (var change in transaction.Changes)
            {
                var (current, head) = CurrentKv(c, caller.Tenant, change.StoredKey);
                var live = LiveOrNull(current, now);
                switch (change.Kind)
                {
                    case KvChangeKind.Set:
                        WriteKv(c, caller, change.StoredKey, change.ValueJson!, change.ExpiresAtMs, current, head, live is not null, change.Event, now);
                        break;
                    case KvChangeKind.Delete when live is not null:
                        DeleteKv(c, caller, live, change.Event, now);
                        break;
                    case KvChangeKind.Expire when live is not null:
                        ExpireKv(c, caller, live, change.ExpiresAtMs, now);
                        break;
                }
            }
            _kvRows.Insert(c);
            return result;
        }, durability, ct);

    public async Task<KvStoredPage> ListKvAsync(Caller caller, KvGlob pattern, int limit, string? afterKey, CancellationToken ct = default)
    {
        await FlushKvAsync(caller.Tenant, pattern, ct).ConfigureAwait(false);
        return await _readers.ReadAsync(c =>
        {
            var items = SelectMatching(c, caller.Tenant, pattern, afterKey, limit + 1, NowMs);
            string? last = null;
            if (items.Count > limit)
            {
                items.RemoveAt(items.Count - 1);
                last = items[^1].StoredKey;
            }
            return new KvStoredPage(items, last);
        }, ct).ConfigureAwait(false);
    }

    public async Task<KvCount> CountKvAsync(Caller caller, KvGlob pattern, CancellationToken ct = default)
    {
        await FlushKvAsync(caller.Tenant, pattern, ct).ConfigureAwait(false);
        return await _readers.ReadAsync(c =>
        {
            var upper = UpperBound(pattern.Prefix);
            using var statement = c.Prepare("SELECT count(*), count(expires_at), coalesce(avg(expires_at - ?3), 0) FROM kv_entries " +
                $"WHERE tenant = ?1 AND {KvPatternCondition} AND {KvLive} AND key >= ?4" + (upper is null ? "" : " AND key < CAST(?5 AS TEXT)"));
            statement.BindAll([caller.Tenant, pattern.Sql, NowMs, pattern.Prefix]);
            if (upper is not null)
            {
                statement.Bind(5, upper);
            }
            statement.Step();
            return new KvCount(statement.GetInt64(0), statement.GetInt64(1), (long)Math.Round(statement.GetDouble(2)));
        }, ct).ConfigureAwait(false);
    }

    public async Task<KvDeleteStep> DeleteMatchingKvAsync(Caller caller, KvGlob pattern, string? afterKey, TimeSpan budget, WriteDurability durability,
        CancellationToken ct = default)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var total = 0;
        var position = afterKey;
        while (true)
        {
            // One chunk per transaction, so other writes go on between chunks; the position moves past
            // each chunk's last key, so keys the pattern's range holds but GLOB refuses are read once.
            var before = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            var (deleted, last) = await _writer.WriteAsync(c =>
            {
                var now = NowMs;
                FlushKv(c, caller.Tenant, pattern);
                var doomed = SelectMatching(c, caller.Tenant, pattern, position, DeleteChunk, now);
                using var seqs = ReserveKvSeqs(c, doomed.Count);
                using var rows = CollectKvHistory(doomed.Count);
                foreach (var entry in doomed)
                {
                    DeleteKv(c, caller, entry, KvEvents.Deleted, now);
                }
                _kvRows.Insert(c);
                return (doomed.Count, doomed.Count == 0 ? position : doomed[^1].StoredKey);
            }, durability, ct).ConfigureAwait(false);
            total += deleted;
            position = last;
            if (deleted < DeleteChunk)
            {
                return new KvDeleteStep(total, null);
            }
            // Stop when another chunk as slow as the last would overrun the budget, so a call ends
            // near it rather than up to a whole chunk beyond.
            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (elapsed + (elapsed - before) > budget)
            {
                return new KvDeleteStep(total, position);
            }
        }
    }

    public async Task<KvHistoryPage> GetKvHistoryAsync(Caller caller, string storedKey, int limit, long? from, long maxValueChars, CancellationToken ct = default)
    {
        // The history rows of journaled SETs are written when the writer applies them.
        await ApplyKvJournalAsync(ct).ConfigureAwait(false);
        return await _readers.ReadAsync(c =>
        {
            // Walk the chain from the newest entry (or from the cursor: the next entry a previous page
            // did not reach) towards the oldest, one rowid seek per entry. The tenant and key in the
            // seek make a cursor from another key or tenant reach nothing.
            var next = from
                ?? _kvHot.HistoryHead(new KvSlot(caller.Tenant, storedKey))
                ?? c.ScalarInt64("SELECT last_hid FROM kv_entries WHERE tenant = ?1 AND key = ?2", caller.Tenant, storedKey)
                ?? c.ScalarInt64("SELECT last_hid FROM kv_deleted WHERE tenant = ?1 AND key = ?2", caller.Tenant, storedKey);
            var entries = new List<KvHistoryEntry>(Math.Min(limit, 256));
            using var statement = c.Prepare(
                "SELECT seq, event, actor, at, version, value, expires_at, prev_hid FROM kv_history WHERE hid = ?1 AND tenant = ?2 AND key = ?3");
            long chars = 0;
            while (next is { } hid && entries.Count < limit && chars < maxValueChars)
            {
                statement.BindAll([hid, caller.Tenant, storedKey]);
                if (!statement.Step())
                {
                    next = null; // older entries were pruned (history retention), or a foreign cursor
                    break;
                }
                var entry = ReadKvHistory(statement);
                entries.Add(entry);
                chars += entry.ValueJson?.Length ?? 0;
                next = statement.GetInt64OrNull(7);
                statement.ResetForReuse();
            }
            entries.Reverse();
            return new KvHistoryPage(entries, next);
        }, ct).ConfigureAwait(false);
    }

    public Task<int> DeleteExpiredKvAsync(int max, CancellationToken ct = default) =>
        InChunksAsync(max, (c, chunk, now) =>
        {
            // Expired states waiting to be folded, then expired rows of kv_entries. A row whose key
            // has a newer state here is brought up to date in the table instead (it may be live
            // again), so the next chunk's query moves past it.
            var expired = new Dictionary<KvSlot, KvEntry>();
            foreach (var (slot, state) in _kvHot.View())
            {
                if (expired.Count < chunk && state.Entry is { } entry && !entry.IsLiveAt(now))
                {
                    expired[slot] = entry;
                }
            }
            var stale = new List<(KvSlot Slot, KvEntry Entry)>();
            using (var statement = c.Prepare(
                "SELECT tenant, key, expires_at, version, created_at, updated_at, last_hid FROM kv_entries WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2"))
            {
                statement.BindAll([now, chunk]);
                while (statement.Step())
                {
                    stale.Add((new KvSlot(statement.GetText(0), statement.GetText(1)), new KvEntry(statement.GetText(1), "", statement.GetInt64OrNull(2),
                        statement.GetInt64(3), statement.GetInt64(4), statement.GetInt64(5), statement.GetInt64OrNull(6))));
                }
            }
            foreach (var (slot, entry) in stale)
            {
                if (_kvHot.Find(slot) is { } newer)
                {
                    SqliteKvWriteBehind.WriteState(c, slot, newer);
                }
                else if (expired.Count < chunk)
                {
                    expired.TryAdd(slot, entry);
                }
            }
            using var seqs = ReserveKvSeqs(c, expired.Count);
            foreach (var (slot, entry) in expired)
            {
                DeleteKv(c, Caller.System("ttl-sweeper", slot.Tenant), entry, KvEvents.Expired, now);
            }
            return expired.Count;
        }, ct);

    public async Task<KvHistoryPruning> PruneKvHistoryAsync(long beforeMs, long afterHistoryId, int max, CancellationToken ct = default)
    {
        var deleted = 0;
        var examined = 0;
        var position = afterHistoryId;
        // Pruning asks kv_entries which row is a key's newest, and a crash replays the rows the
        // table does not reflect: so first the table takes every waiting state, and the pass stays
        // below the newest row at that moment.
        var reflected = await _writer.WriteAsync(c =>
        {
            _kvHot.Flush(c, _ => true);
            return c.ScalarInt64("SELECT max(hid) FROM kv_history") ?? 0;
        }, WriteDurability.Relaxed, ct).ConfigureAwait(false);
        while (examined < max)
        {
            var chunk = Math.Min(DeleteChunk, max - examined);
            var (count, last, seen) = await _writer.WriteAsync(c => PruneChunk(c, _kvHot, beforeMs, position, reflected, chunk), WriteDurability.Relaxed, ct)
                .ConfigureAwait(false);
            deleted += count;
            examined += seen;
            position = last;
            if (seen < chunk)
            {
                await PruneLoggedKvChangesAsync(beforeMs, max, ct).ConfigureAwait(false);
                return new KvHistoryPruning(deleted, position, More: false);
            }
        }
        return new KvHistoryPruning(deleted, position, More: true);
    }

    /// <summary>
    /// Key-value changes logged as changelog rows before schema 14 (Changes.cs) go by the same retention as the history
    /// that replaced them: walked in seq (= time) order from where the last pass stopped (store_meta
    /// <c>kv_changelog_pruned_through</c>), never past the migration's seq, memory and graph entries left alone (not counted as
    /// history in the pass's result).
    /// </summary>
    private async Task PruneLoggedKvChangesAsync(long beforeMs, int max, CancellationToken ct)
    {
        if (_kvChangesInHistoryAfter is not { } migrated)
        {
            return;
        }
        for (var examined = 0; examined < max;)
        {
            var seen = await _writer.WriteAsync(c =>
            {
                var from = c.ScalarInt64($"SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = '{LoggedKvPrunedKey}'") ?? 0;
                var doomed = new List<long>();
                long last = from;
                var seen = 0;
                using (var statement = c.Prepare("SELECT seq, entity, at FROM changelog WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"))
                {
                    statement.BindAll([from, migrated, DeleteChunk]);
                    while (statement.Step() && statement.GetInt64(2) < beforeMs)
                    {
                        seen++;
                        last = statement.GetInt64(0);
                        if (statement.GetText(1) == ChangeRecord.KeyValueEntity)
                        {
                            doomed.Add(last);
                        }
                    }
                }
                foreach (var seq in doomed)
                {
                    c.ExecuteNonQuery("DELETE FROM changelog WHERE seq = ?1", seq);
                }
                if (last > from)
                {
                    c.ExecuteNonQuery("INSERT INTO store_meta(key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        LoggedKvPrunedKey, last.ToString(CultureInfo.InvariantCulture));
                }
                return seen;
            }, WriteDurability.Relaxed, ct).ConfigureAwait(false);
            examined += seen;
            if (seen < DeleteChunk)
            {
                break; // the legacy entries are done, or the rest are younger than the cutoff
            }
        }
    }

    /// <summary>store_meta key: every legacy key-value changelog row up to this seq has been judged by <see cref="PruneLoggedKvChangesAsync"/>.</summary>
    private const string LoggedKvPrunedKey = "kv_changelog_pruned_through";

    /// <summary>
    /// One chunk of history pruning, in history order (the primary key: no scan of the table). Rows
    /// are appended in time order, so the walk stops at the first row not older than the cutoff.
    /// Relaxed durability: a pruning lost to a power cut is simply redone.
    /// </summary>
    private static (int Deleted, long Last, int Seen) PruneChunk(SqliteConnection c, SqliteKvWriteBehind kvHot, long beforeMs, long afterHid, long reflected,
        int chunk)
    {
        var candidates = new List<(long Hid, string Tenant, string Key)>(chunk);
        // Strictly below the newest row: kv_history's ids are rowids, so deleting the newest would let
        // the next write take an id at or below the write-behind watermark, which a replay after a crash skips.
        using (var statement = c.Prepare("SELECT hid, tenant, key, at FROM kv_history WHERE hid > ?1 AND hid < ?3 ORDER BY hid LIMIT ?2"))
        {
            statement.BindAll([afterHid, chunk, reflected]);
            while (statement.Step() && statement.GetInt64(3) < beforeMs)
            {
                candidates.Add((statement.GetInt64(0), statement.GetText(1), statement.GetText(2)));
            }
        }
        var deleted = 0;
        foreach (var (hid, tenant, key) in candidates)
        {
            if (c.ScalarInt64("SELECT 1 FROM kv_entries WHERE tenant = ?1 AND key = ?2 AND last_hid = ?3", tenant, key, hid) is not null)
            {
                continue; // the newest entry of a live key stays
            }
            c.ExecuteNonQuery("DELETE FROM kv_history WHERE hid = ?1", hid);
            if (c.ExecuteNonQuery("DELETE FROM kv_deleted WHERE tenant = ?1 AND key = ?2 AND last_hid = ?3", tenant, key, hid) > 0)
            {
                kvHot.ForgetDeleted(new KvSlot(tenant, key), hid); // the tables now know nothing of the key
            }
            deleted++;
        }
        return (deleted, candidates.Count == 0 ? afterHid : candidates[^1].Hid, candidates.Count);
    }

    private KvSetResult SetOne(SqliteConnection c, Caller caller, KvWrite write, long now)
    {
        var (current, head) = CurrentKv(c, caller.Tenant, write.StoredKey);
        var live = current is not null && current.IsLiveAt(now);
        KvWrites.CheckCondition(caller, write, live);
        var (version, seq) = WriteKv(c, caller, write.StoredKey, write.ValueJson, write.ExpiresAtMs, current, head, live, live ? KvEvents.Updated : KvEvents.Created, now);
        return new KvSetResult(!live, version, seq);
    }

    /// <summary>
    /// Writes the key's new state: history row and change-log entry now, the entry behind
    /// (<see cref="SqliteKvWriteBehind"/>). A value written over an expired entry counts as new
    /// (created_at restarts) but its version keeps rising; after a delete the history continues from
    /// where the delete left it (<paramref name="head"/>).
    /// </summary>
    private (long Version, long Seq) WriteKv(SqliteConnection c, Caller caller, string storedKey, string json, long? expiresAtMs,
        KvEntry? current, long? head, bool live, string historyEvent, long now)
    {
        var version = (current?.Version ?? 0) + 1;
        var createdAt = live ? current!.CreatedAtMs : now;
        var seq = NextKvSeq(c, caller.Tenant, storedKey, ChangeRecord.Upsert, now);
        var hid = AppendKvHistory(c, caller, storedKey, seq, historyEvent, now, version, json, expiresAtMs, head);
        _kvHot.Stage(new KvSlot(caller.Tenant, storedKey), new KvEntry(storedKey, json, expiresAtMs, version, createdAt, now, hid), hid, seq);
        return (version, seq);
    }

    /// <summary>Gives the live <paramref name="entry"/> a new expiry (null: never), keeping its value.</summary>
    private void ExpireKv(SqliteConnection c, Caller caller, KvEntry entry, long? expiresAtMs, long now)
    {
        var seq = NextKvSeq(c, caller.Tenant, entry.StoredKey, ChangeRecord.Upsert, now);
        var hid = AppendKvHistory(c, caller, entry.StoredKey, seq, KvEvents.TtlChanged, now, entry.Version + 1, null, expiresAtMs, entry.LastHistoryId);
        _kvHot.Stage(new KvSlot(caller.Tenant, entry.StoredKey),
            entry with { ExpiresAtMs = expiresAtMs, Version = entry.Version + 1, UpdatedAtMs = now, LastHistoryId = hid }, hid, seq);
    }

    private void DeleteKv(SqliteConnection c, Caller caller, KvEntry entry, string historyEvent, long now)
    {
        var seq = NextKvSeq(c, caller.Tenant, entry.StoredKey, ChangeRecord.Delete, now);
        var hid = AppendKvHistory(c, caller, entry.StoredKey, seq, historyEvent, now, entry.Version, null, entry.ExpiresAtMs, entry.LastHistoryId);
        _kvHot.Stage(new KvSlot(caller.Tenant, entry.StoredKey), null, hid, seq);
    }

    /// <summary>
    /// The key's newest entry in the running transaction, expired or not (null: none), and the head
    /// of its history chain (a deleted key keeps one). From the write-behind states, else the tables.
    /// </summary>
    private (KvEntry? Entry, long? Head) CurrentKv(SqliteConnection c, string tenant, string storedKey) =>
        _kvHot.Current(c, new KvSlot(tenant, storedKey)) switch
        {
            null => (null, null),
            { Entry: { } entry } => (entry, entry.LastHistoryId),
            var deleted => (null, deleted.LastHid),
        };

    /// <summary>
    /// <see cref="FlushKv"/> as a writer item of its own, when some state is missing from the table: for a listing or count
    /// on a reader connection, which reads kv_entries.
    /// </summary>
    private async Task FlushKvAsync(string tenant, KvGlob pattern, CancellationToken ct)
    {
        if (_kvHot.HasUnflushed || _journal is { Pending: > 0 })
        {
            await _writer.WriteAsync(c =>
            {
                FlushKv(c, tenant, pattern);
                return 0;
            }, WriteDurability.Relaxed, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Writes the states of keys <paramref name="pattern"/> can match to kv_entries, for the queries that read the table.</summary>
    private void FlushKv(SqliteConnection c, string tenant, KvGlob pattern) =>
        _kvHot.Flush(c, slot => slot.Tenant == tenant && slot.Key.StartsWith(pattern.Prefix, StringComparison.Ordinal));

    private static KvEntry? LiveOrNull(KvEntry? entry, long now) => entry is not null && entry.IsLiveAt(now) ? entry : null;

    /// <summary>A key matching the pattern (?2) by its stored or its shown name (tenant ?1): <see cref="KvGlob.SqlCondition"/>.</summary>
    private static readonly string KvPatternCondition = KvGlob.SqlCondition("?1", "?2");

    /// <summary>
    /// Live entries matching <paramref name="pattern"/> after <paramref name="afterKey"/>, in key order, without values.
    /// The literal prefix bounds the scan to its key range (GLOB alone could not use the primary key here).
    /// </summary>
    private static List<KvEntry> SelectMatching(SqliteConnection c, string tenant, KvGlob pattern, string? afterKey, int limit, long now)
    {
        var upper = UpperBound(pattern.Prefix);
        // One lower bound, the higher of the prefix and the page's last key: given both, SQLite seeks by one and filters
        // by the other, so each page of a listing read every key before it (SCAN COUNT 1000 through 100,000 keys: 5.7 ms
        // a page at the start, 22 ms at the end, and redis-cli --scan took 2 minutes).
        var (lowerOp, lower) = afterKey is not null && KvKeys.CompareStored(afterKey, pattern.Prefix) >= 0 ? (">", afterKey) : (">=", pattern.Prefix);
        var sql = "SELECT key, expires_at, version, created_at, updated_at, last_hid FROM kv_entries " +
            $"WHERE tenant = ?1 AND {KvPatternCondition} AND {KvLive} AND key {lowerOp} ?4" +
            (upper is null ? "" : " AND key < CAST(?5 AS TEXT)") + " ORDER BY key LIMIT " + limit.ToString(CultureInfo.InvariantCulture);
        var items = new List<KvEntry>(Math.Min(limit, 256));
        using var statement = c.Prepare(sql);
        statement.BindAll([tenant, pattern.Sql, now, lower]);
        if (upper is not null)
        {
            statement.Bind(5, upper);
        }
        while (statement.Step())
        {
            items.Add(new KvEntry(statement.GetText(0), "", statement.GetInt64OrNull(1), statement.GetInt64(2), statement.GetInt64(3), statement.GetInt64(4),
                statement.GetInt64OrNull(5)));
        }
        return items;
    }

    /// <summary>The smallest byte string above every key starting with <paramref name="prefix"/> (UTF-8 never holds 0xFF, so the last byte can always rise).</summary>
    private static byte[]? UpperBound(string prefix)
    {
        if (prefix.Length == 0)
        {
            return null;
        }
        var bytes = Encoding.UTF8.GetBytes(prefix);
        bytes[^1]++;
        return bytes;
    }

    private static long AppendKvChange(SqliteConnection c, string tenant, string storedKey, string op, long now)
    {
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            tenant, ChangeRecord.KeyValueEntity, storedKey, op, now);
        return c.LastInsertRowId;
    }

    /// <summary>
    /// Appends a history row linked to the key's previous one; returns its id, the key's new chain head. From schema 14
    /// the id is the change's <paramref name="seq"/> (<see cref="NextKvSeq"/>), else the next rowid.
    /// </summary>
    private long AppendKvHistory(SqliteConnection c, Caller caller, string storedKey, long seq, string historyEvent, long now, long version,
        string? json, long? expiresAtMs, long? previous)
    {
        if (_kvRows.Collecting)
        {
            _kvRows.Add(new KvHistoryRow(seq, caller.Tenant, storedKey, seq, historyEvent, caller.Actor, now, version, json, expiresAtMs, previous));
            return seq;
        }
        return InsertKvHistory(c, _kvChangesInHistoryAfter is null ? null : seq, caller.Tenant, storedKey, seq, historyEvent, caller.Actor, now, version, json,
            expiresAtMs, previous);
    }

    /// <summary>
    /// Lets an item that writes <paramref name="changes"/> key-value changes insert their history rows together at its end
    /// (<see cref="SqliteKvHistoryRows"/>), when there is more than one and their ids are their seqs (not in a store whose
    /// key-value changes still go to the change log, where the row id comes from the insert).
    /// </summary>
    private SqliteKvHistoryRows.Scope? CollectKvHistory(int changes) =>
        changes > 1 && _kvChangesInHistoryAfter is not null ? _kvRows.Collect() : null;

    /// <summary>Inserts a history row with id <paramref name="hid"/> (null: the next rowid); returns its id.</summary>
    private static long InsertKvHistory(SqliteConnection c, long? hid, string tenant, string storedKey, long seq, string historyEvent, string actor, long at,
        long version, string? json, long? expiresAtMs, long? previous)
    {
        using var insert = c.Prepare(
            "INSERT INTO kv_history(hid, tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
        insert.Bind(1, hid);
        insert.Bind(2, tenant);
        insert.Bind(3, storedKey);
        insert.Bind(4, seq);
        insert.Bind(5, historyEvent);
        insert.Bind(6, actor);
        insert.Bind(7, at);
        insert.Bind(8, version);
        insert.Bind(9, json);
        insert.Bind(10, expiresAtMs);
        insert.Bind(11, previous);
        insert.StepToEnd();
        return hid ?? c.LastInsertRowId;
    }
}
