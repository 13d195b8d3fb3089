using System.Globalization;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Key-value state beside memories, with the SQLite store's semantics: every write appends a history
/// row (a chain through prev_hid; the entry, or kv_deleted after a delete, holds the head) and a
/// change-log entry (entity "kv") in the transaction that writes the entry. Writes take the log lock
/// first, so nx/xx, incr and versions are decided one transaction at a time across every instance.
/// No write-behind: the entry is written in place (PostgreSQL's MVCC takes the random writes).
/// </summary>
public sealed partial class PostgresMemoryStore : IKeyValueStore
{
    private const string KvEntryColumns = "key, value, expires_at, version, created_at, updated_at, last_hid";

    // Every write queues in order here (no write is acknowledged ahead of the queue): afterWritesUnderWay holds by itself.
    public async Task<KvSetResult> SetKvAsync(Caller caller, KvWrite write, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        (await SetGroupedAsync(caller, [write], durability, ct).ConfigureAwait(false))[0];

    public async Task<IReadOnlyList<KvSetResult>> SetManyKvAsync(Caller caller, IReadOnlyList<KvWrite> writes, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default)
    {
        await RefreshKvStatisticsBeforeAsync(writes.Count, ct).ConfigureAwait(false);
        return await SetGroupedAsync(caller, writes, durability, ct).ConfigureAwait(false);
    }

    public Task<KvEntry?> GetKvAsync(Caller caller, string storedKey, CancellationToken ct = default) =>
        ReadAsync(async c => LiveOrNull((await CurrentKvAsync(c, caller.Tenant, storedKey, withHead: false).ConfigureAwait(false)).Entry, NowMs), ct);

    /// <summary>Every read is asynchronous I/O with Npgsql: the calling thread never waits for the server.</summary>
    public bool ReadsKvWithoutBlocking(Caller caller, string storedKey) => true;

    /// <summary>Never: this store keeps no key-value state in memory (every instance reads the database).</summary>
    public bool TryGetKvFromMemory(Caller caller, ReadOnlySpan<char> storedKey, out KvEntry? entry)
    {
        entry = null;
        return false;
    }

    public Task<IReadOnlyList<KvEntry?>> GetManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<KvEntry?>>(async c =>
        {
            var now = NowMs;
            var found = new Dictionary<string, KvEntry>(StringComparer.Ordinal);
            await using var command = Command(c, $"SELECT e.* FROM {KeysGiven} CROSS JOIN LATERAL (SELECT {KvEntryColumns} FROM kv_entries {WhereKeyGiven}) e")
                .Text(caller.Tenant).TextArray([.. storedKeys]);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var entry = ReadKvEntry(reader);
                found[entry.StoredKey] = entry;
            }
            return [.. storedKeys.Select(k => LiveOrNull(found.GetValueOrDefault(k), now))];
        }, ct);

    // The single-key changes below are decisions over the key's live entry (KeyChange), which the log queue runs in its
    // groups beside SETs, or alone: the same code either way (WriteBatchedAsync).
    public async Task<bool> DeleteKvAsync(Caller caller, string storedKey, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        (bool)(await ChangeGroupedAsync(caller, storedKey, (live, _) => live is null
            ? new KeyDecision(KvChange.Keep, "", false)
            : new KeyDecision(KvChange.Remove, KvEvents.Deleted, true), durability, ct).ConfigureAwait(false))!;

    public async Task<long> IncrementKvAsync(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, WriteDurability durability,
        bool textIntegers = false, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        (long)(await ChangeGroupedAsync(caller, storedKey, (live, _) =>
        {
            var next = KvWrites.Increment(caller, storedKey, live, by, textIntegers);
            return new KeyDecision(KvChange.Write(next.ToString(CultureInfo.InvariantCulture), live is null ? expiresAtMsIfNew : live.ExpiresAtMs),
                KvEvents.Incremented, next);
        }, durability, ct).ConfigureAwait(false))!;

    public async Task<bool> ExpireKvAsync(Caller caller, string storedKey, long? expiresAtMs, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        (bool)(await ChangeGroupedAsync(caller, storedKey, (live, _) => live is null
            ? new KeyDecision(KvChange.Keep, "", false)
            : new KeyDecision(KvChange.ExpireAt(expiresAtMs), KvEvents.TtlChanged, true), durability, ct).ConfigureAwait(false))!;

    // Under the log lock (a queued write): no other write, on any instance, comes between the read and the write.
    public async Task<KvUpdated> UpdateKvAsync(Caller caller, string storedKey, Func<KvEntry?, long, KvChange> decide, WriteDurability durability,
        bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        (KvUpdated)(await ChangeGroupedAsync(caller, storedKey, (live, now) =>
        {
            var change = decide(live, now);
            var historyEvent = change.Kind switch
            {
                KvChangeKind.Set => live is null ? KvEvents.Created : KvEvents.Updated,
                KvChangeKind.Delete => KvEvents.Deleted,
                _ => KvEvents.TtlChanged,
            };
            // A delete or an expiry change of a missing key changes nothing.
            var changed = change.Kind == KvChangeKind.Set || (change.Kind != KvChangeKind.None && live is not null);
            return new KeyDecision(change, historyEvent, new KvUpdated(live, changed));
        }, durability, ct).ConfigureAwait(false))!;

    public async Task<T> TransactKvAsync<T>(Caller caller, IReadOnlyCollection<string> storedKeys, Func<KvTransaction, T> run, WriteDurability durability,
        CancellationToken ct = default)
    {
        await RefreshKvStatisticsBeforeAsync(storedKeys.Count, ct).ConfigureAwait(false);
        return await TransactLoggedAsync(caller, storedKeys, run, durability, ct).ConfigureAwait(false);
    }

    private Task<T> TransactLoggedAsync<T>(Caller caller, IReadOnlyCollection<string> storedKeys, Func<KvTransaction, T> run, WriteDurability durability,
        CancellationToken ct) =>
        // Under the log lock (LoggedAsync): no other write, on any instance, comes between the reads and the writes.
        LoggedAsync(async c =>
        {
            var now = NowMs;
            // Each key's state as this step knows it: read KvStateChunk keys a query (one round trip per key made a
            // 20,000-command MULTI take 10 s), then kept up to date from what each write returns, so a change needs no
            // read of its own.
            var known = new Dictionary<string, (KvEntry? Entry, long? Head)>(storedKeys.Count, StringComparer.Ordinal);
            var read = new List<(string, KvEntry?, long?)>(storedKeys.Count);
            long chars = 0;
            foreach (var chunk in storedKeys.Chunk(KvStateChunk))
            {
                await ReadKvStatesAsync(c, caller.Tenant, chunk, known).ConfigureAwait(false);
                foreach (var key in chunk)
                {
                    var (entry, head) = known[key];
                    KvTransaction.CountRead(ref chars, entry); // stops the reading at the transaction's bound
                    read.Add((key, entry, head));
                }
            }
            var transaction = new KvTransaction(caller, now, read, (pattern, afterKey, limit) => SelectMatching(c, caller.Tenant, pattern, afterKey, limit, now),
                key => known[key] = CurrentKv(c, caller.Tenant, key));
            var result = run(transaction);
            // The changes go in batches (KvWriteBatch): each is decided from its key's state as the step's changes before it
            // left it (kept here as each is added); a key changed before in the step reads its history head in SQL.
            await using var batch = new KvWriteBatch(c);
            foreach (var change in transaction.Changes)
            {
                var key = change.StoredKey;
                if (!known.TryGetValue(key, out var state))
                {
                    state = await CurrentKvAsync(c, caller.Tenant, key, withHead: true).ConfigureAwait(false);
                }
                var (current, head) = state;
                var live = LiveOrNull(current, now);
                switch (change.Kind)
                {
                    case KvChangeKind.Set:
                        var entry = await batch.AddSetAsync(caller, key, change.ValueJson!, change.ExpiresAtMs, current, head, live is not null, change.Event, now)
                            .ConfigureAwait(false);
                        known[key] = (entry, HeadFromTables);
                        break;
                    case KvChangeKind.Delete when live is not null:
                        known[key] = (null, HeadFromTables);
                        await batch.AddDeleteAsync(caller, key, change.Event, now).ConfigureAwait(false);
                        break;
                    case KvChangeKind.Expire when live is not null:
                        known[key] = (live with { ExpiresAtMs = change.ExpiresAtMs, Version = live.Version + 1, UpdatedAtMs = now }, HeadFromTables);
                        await batch.AddAsync(ExpireKvCommand(c, caller, live, change.ExpiresAtMs, head, now)).ConfigureAwait(false);
                        break;
                }
            }
            await batch.SendAsync().ConfigureAwait(false);
            return result;
        }, durability, ct);

    public Task<KvStoredPage> ListKvAsync(Caller caller, KvGlob pattern, int limit, string? afterKey, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var items = await SelectMatchingAsync(c, caller.Tenant, pattern, afterKey, limit + 1, NowMs).ConfigureAwait(false);
            string? last = null;
            if (items.Count > limit)
            {
                items.RemoveAt(items.Count - 1);
                last = items[^1].StoredKey;
            }
            return new KvStoredPage(items, last);
        }, ct);

    public Task<KvCount> CountKvAsync(Caller caller, KvGlob pattern, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var upper = UpperBound(pattern.Prefix);
            await using var command = Command(c,
                "SELECT count(*), count(expires_at), coalesce(round(avg(expires_at - $3)), 0)::bigint FROM kv_entries " +
                "WHERE tenant = $1 AND " + KvPatternCondition + " AND (expires_at IS NULL OR expires_at > $3) AND key >= $4" + (upper is null ? "" : " AND key < $5"))
                .Text(caller.Tenant).Text(GlobToRegex(pattern.Sql)).Int(NowMs).Text(pattern.Prefix);
            if (upper is not null)
            {
                command.Text(upper);
            }
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return new KvCount(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }, ct);

    public async Task<KvDeleteStep> DeleteMatchingKvAsync(Caller caller, KvGlob pattern, string? afterKey, TimeSpan budget, WriteDurability durability,
        CancellationToken ct = default)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var total = 0;
        var position = afterKey;
        while (true)
        {
            var before = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            var (deleted, last) = await LoggedAsync(async c =>
            {
                var now = NowMs;
                var doomed = await SelectMatchingAsync(c, caller.Tenant, pattern, position, DeleteChunk, now).ConfigureAwait(false);
                var keys = doomed.Select(e => e.StoredKey).ToArray();
                await DeleteKvSetAsync(c, [.. keys.Select(_ => caller.Tenant)], keys, caller.Actor, KvEvents.Deleted, expired: false, now, ct).ConfigureAwait(false);
                return (doomed.Count, doomed.Count == 0 ? position : doomed[^1].StoredKey);
            }, durability, ct).ConfigureAwait(false);
            total += deleted;
            position = last;
            if (deleted < DeleteChunk)
            {
                return new KvDeleteStep(total, null);
            }
            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (elapsed + (elapsed - before) > budget)
            {
                return new KvDeleteStep(total, position);
            }
        }
    }

    public Task<KvHistoryPage> GetKvHistoryAsync(Caller caller, string storedKey, int limit, long? from, long maxValueChars, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var next = from ?? (await CurrentKvAsync(c, caller.Tenant, storedKey, withHead: true).ConfigureAwait(false)).Head;
            var entries = new List<KvHistoryEntry>(Math.Min(limit, 256));
            long chars = 0;
            while (next is { } hid && entries.Count < limit && chars < maxValueChars)
            {
                await using var command = Command(c,
                    "SELECT seq, event, actor, at, version, value, expires_at, prev_hid FROM kv_history WHERE hid = $1 AND tenant = $2 AND key = $3")
                    .Int(hid).Text(caller.Tenant).Text(storedKey);
                await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    next = null; // older entries were pruned, or a foreign cursor
                    break;
                }
                var entry = ReadKvHistory(new PostgresRow(reader));
                entries.Add(entry);
                chars += entry.ValueJson?.Length ?? 0;
                next = reader.Int64OrNull(7);
            }
            entries.Reverse();
            return new KvHistoryPage(entries, next);
        }, ct);

    /// <summary>
    /// A transaction that writes WAL (the log head's row lock) committed with <c>synchronous_commit</c> on, set for this
    /// transaction (the client asked for the disk, whatever the server's default): PostgreSQL then flushes the WAL up to its
    /// commit record before the commit returns, so every commit before it (a relaxed write's, from any session) is on disk
    /// too. A transaction that only takes an id is not enough: with no WAL of its own, PostgreSQL commits it asynchronously.
    /// The lock also queues the sync behind the writes under way.
    /// </summary>
    public Task SyncKvAsync(CancellationToken ct = default) =>
        WriteAsync(c => ScalarAsync<long>(c, "SELECT seq FROM log_head, set_config('synchronous_commit', 'on', true) FOR UPDATE OF log_head", ct),
            WriteDurability.Full, ct);

    public async Task<int> DeleteExpiredKvAsync(int max, CancellationToken ct = default)
    {
        var total = 0;
        while (total < max)
        {
            var chunk = Math.Min(DeleteChunk, max - total);
            var deleted = await LoggedAsync(async c =>
            {
                var now = NowMs;
                var (tenants, keys) = (new List<string>(chunk), new List<string>(chunk));
                await using (var command = Command(c,
                    "SELECT tenant, key FROM kv_entries WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2").Int(now).Int(chunk))
                await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    {
                        tenants.Add(reader.GetString(0));
                        keys.Add(reader.GetString(1));
                    }
                }
                return await DeleteKvSetAsync(c, [.. tenants], [.. keys], Caller.System("ttl-sweeper").Actor, KvEvents.Expired, expired: true, now, ct)
                    .ConfigureAwait(false);
            }, WriteDurability.Full, ct).ConfigureAwait(false);
            total += deleted;
            if (deleted < chunk)
            {
                break;
            }
        }
        return total;
    }

    public async Task<KvHistoryPruning> PruneKvHistoryAsync(long beforeMs, long afterHistoryId, int max, CancellationToken ct = default)
    {
        var deleted = 0;
        var examined = 0;
        var position = afterHistoryId;
        while (examined < max)
        {
            var chunk = Math.Min(DeleteChunk, max - examined);
            // Under the log lock: no write moves a key's head while its rows are judged.
            var (count, last, seen) = await LoggedAsync(c => PruneChunkAsync(c, beforeMs, position, chunk), WriteDurability.Relaxed, ct).ConfigureAwait(false);
            deleted += count;
            examined += seen;
            position = last;
            if (seen < chunk)
            {
                return new KvHistoryPruning(deleted, position, More: false);
            }
        }
        return new KvHistoryPruning(deleted, position, More: true);
    }

    private static async Task<(int Deleted, long Last, int Seen)> PruneChunkAsync(NpgsqlConnection c, long beforeMs, long afterHid, int chunk)
    {
        var candidates = new List<(long Hid, string Tenant, string Key)>(chunk);
        await using (var command = Command(c, "SELECT hid, tenant, key, at FROM kv_history WHERE hid > $1 ORDER BY hid LIMIT $2").Int(afterHid).Int(chunk))
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false) && reader.GetInt64(3) < beforeMs)
            {
                candidates.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2)));
            }
        }
        var deleted = 0;
        long unlogged = 0;
        foreach (var (hid, tenant, key) in candidates)
        {
            // The change's log entry goes with its history row, so key-value churn does not grow the log for ever.
            await using var command = Command(c,
                "WITH gone AS (DELETE FROM kv_history WHERE hid = $1 AND NOT EXISTS " +
                "(SELECT 1 FROM kv_entries WHERE tenant = $2 AND key = $3 AND last_hid = $1) RETURNING hid, seq), " +
                "forgotten AS (DELETE FROM kv_deleted WHERE tenant = $2 AND key = $3 AND last_hid IN (SELECT hid FROM gone)), " +
                $"unlogged AS (DELETE FROM changelog WHERE seq IN (SELECT seq FROM gone) AND entity = '{ChangeRecord.KeyValueEntity}' RETURNING seq) " +
                "SELECT (SELECT count(*) FROM gone), (SELECT max(seq) FROM unlogged)").Int(hid).Text(tenant).Text(key);
            await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            await reader.ReadAsync().ConfigureAwait(false);
            deleted += (int)reader.GetInt64(0);
            unlogged = reader.IsDBNull(1) ? unlogged : Math.Max(unlogged, reader.GetInt64(1));
        }
        if (unlogged > 0)
        {
            // Below this seq the log may have gaps (pruned key-value entries); the integrity check looks for them only above it.
            await using var command = Command(c,
                $"INSERT INTO store_meta(key, value) VALUES ('{ChangeLogPrunedThroughKey}', $1) ON CONFLICT (key) DO UPDATE " +
                "SET value = greatest(store_meta.value::bigint, excluded.value::bigint)::text").Text(unlogged.ToString(CultureInfo.InvariantCulture));
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        return (deleted, candidates.Count == 0 ? afterHid : candidates[^1].Hid, candidates.Count);
    }

    /// <summary>
    /// A SET of <paramref name="write"/> over the key's state (<paramref name="current"/>, <paramref name="head"/>), alone.
    /// </summary>
    private static async Task<KvSetResult> SetOneAsync(NpgsqlConnection c, Caller caller, KvWrite write, KvEntry? current, long? head, long now)
    {
        var live = current is not null && current.IsLiveAt(now);
        KvWrites.CheckCondition(caller, write, live);
        var (entry, seq) = await WriteKvAsync(c, caller, write.StoredKey, write.ValueJson, write.ExpiresAtMs, current, head, live,
            live ? KvEvents.Updated : KvEvents.Created, now).ConfigureAwait(false);
        return new KvSetResult(!live, entry.Version, seq);
    }

    /// <summary>
    /// The key's new state with its history row and change-log entry; a value over an expired entry counts as new (created_at
    /// restarts). Returns the entry as written (its history head included) and the change's seq.
    /// </summary>
    private static async Task<(KvEntry Entry, long Seq)> WriteKvAsync(NpgsqlConnection c, Caller caller, string storedKey, string json, long? expiresAtMs,
        KvEntry? current, long? head, bool live, string historyEvent, long now)
    {
        var (statement, entry) = WriteKvCommand(c, caller, storedKey, json, expiresAtMs, current, head, live, historyEvent, now);
        await using var command = statement;
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        await reader.ReadAsync().ConfigureAwait(false);
        var (seq, hid) = (reader.GetInt64(0), reader.GetInt64(1));
        return (entry with { LastHistoryId = hid }, seq);
    }

    /// <summary>
    /// The statement of a SET (<see cref="WriteKvAsync"/>; its row: seq, history id) and the entry it writes, less the
    /// history id the statement returns.
    /// </summary>
    private static (NpgsqlCommand Statement, KvEntry Entry) WriteKvCommand(NpgsqlConnection c, Caller caller, string storedKey, string json, long? expiresAtMs,
        KvEntry? current, long? head, bool live, string historyEvent, long now)
    {
        var entry = WrittenEntry(storedKey, json, expiresAtMs, current, live, now);
        return (SetKvCommand(c, caller.Tenant, caller.Actor, entry, head, historyEvent), entry);
    }

    /// <summary>The entry a SET over <paramref name="current"/> writes, less its history id: a value over an expired entry counts as new.</summary>
    private static KvEntry WrittenEntry(string storedKey, string json, long? expiresAtMs, KvEntry? current, bool live, long now) =>
        new(storedKey, json, expiresAtMs, (current?.Version ?? 0) + 1, live ? current!.CreatedAtMs : now, now, null);

    /// <summary>
    /// The statement that writes <paramref name="entry"/> (its updated_at the time) with its history row and change-log entry;
    /// its row: seq, history id. Many keys at once: <see cref="UpsertKvSet"/>.
    /// </summary>
    private static NpgsqlCommand SetKvCommand(NpgsqlConnection c, string tenant, string actor, KvEntry entry, long? head, string historyEvent)
    {
        // The change-log entry (AppendChangeAsync), the history row and the entry in one statement:
        // one round trip instead of three, each of them a wait while this instance's writes queue behind the log lock.
        var command = Command(c,
            $"WITH {NextSeq}, " +
            "logged AS (INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, $1, $8, $2, $9, $7 FROM head RETURNING seq), " +
            "history AS (INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) " +
            $"SELECT $1, $2, seq, $10, $11, $7, $5, $3, $4, {(head == HeadFromTables ? HeadOfKey : "$12")} FROM logged RETURNING hid, seq), " +
            "undeleted AS (DELETE FROM kv_deleted WHERE tenant = $1 AND key = $2) " +
            "INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid) SELECT $1, $2, $3, $4, $5, seq, $6, $7, hid FROM history " +
            "ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version, seq = excluded.seq, " +
            "created_at = excluded.created_at, updated_at = excluded.updated_at, last_hid = excluded.last_hid RETURNING seq, last_hid")
            .Text(tenant).Text(entry.StoredKey).Text(entry.ValueJson).Int(entry.ExpiresAtMs).Int(entry.Version).Int(entry.CreatedAtMs).Int(entry.UpdatedAtMs)
            .Text(ChangeRecord.KeyValueEntity).Text(ChangeRecord.Upsert).Text(historyEvent).Text(actor);
        return head == HeadFromTables ? command : command.Int(head);
    }

    /// <summary>
    /// The change-log entry and the history row of a write that keeps no value in its history (an expiry change, a
    /// delete), as the first steps of one statement of data-modifying CTEs (<c>history</c> gives the row's hid): one round
    /// trip with the statement that follows them instead of three. Parameters $1-$10 ($9: the expiry the history row
    /// records; $10: the key's history head, unless the statement reads it, <see cref="HeadFromTables"/>).
    /// </summary>
    private static string LogAndHistory(long? head) =>
        $"WITH {NextSeq}, " +
        "logged AS (INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, $1, $3, $2, $4, $5 FROM head RETURNING seq), " +
        "history AS (INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) " +
        $"SELECT $1, $2, seq, $6, $7, $5, $8, NULL, $9, {(head == HeadFromTables ? HeadOfKey : "$10")} FROM logged RETURNING hid, seq) ";

    /// <summary>
    /// A history head that says "the statement reads the key's head itself" (<see cref="HeadOfKey"/>): for a key that an
    /// earlier write of the same step changed, whose new head only the database knows yet. Any other value (null: no
    /// history) is passed as a parameter, which spares the statement two index probes (about a tenth of its time).
    /// </summary>
    private const long HeadFromTables = long.MinValue;

    /// <summary>
    /// The head of key $2's history chain as the tables hold it when the statement starts: the entry's last history row, or
    /// the one a deleted key keeps (the entry wins should both be there, as <see cref="ReadEntryOrHead"/> reads them). A
    /// write whose history row links to it in SQL need not wait for the outcome of the write of its key before it, so a
    /// batch can hold many writes of one key (<see cref="KvWriteBatch"/>), each statement seeing the ones before it.
    /// </summary>
    private const string HeadOfKey =
        "coalesce((SELECT last_hid FROM kv_entries WHERE tenant = $1 AND key = $2), (SELECT last_hid FROM kv_deleted WHERE tenant = $1 AND key = $2))";

    private static NpgsqlCommand LoggedCommand(NpgsqlConnection c, string rest, Caller caller, string storedKey, string op, long now, string historyEvent,
        long version, long? expiresAtMs, long? head)
    {
        var command = Command(c, LogAndHistory(head) + rest)
            .Text(caller.Tenant).Text(storedKey).Text(ChangeRecord.KeyValueEntity).Text(op).Int(now).Text(historyEvent).Text(caller.Actor).Int(version)
            .Int(expiresAtMs);
        return head == HeadFromTables ? command : command.Int(head);
    }

    /// <summary>
    /// Gives the live <paramref name="entry"/> a new expiry (null: never), keeping its value (history head
    /// <paramref name="head"/>, see <see cref="HeadFromTables"/>); its row: the history row's id.
    /// </summary>
    private static NpgsqlCommand ExpireKvCommand(NpgsqlConnection c, Caller caller, KvEntry entry, long? expiresAtMs, long? head, long now) =>
        LoggedCommand(c,
            ", updated AS (UPDATE kv_entries SET expires_at = $9, version = version + 1, seq = history.seq, updated_at = $5, last_hid = history.hid " +
            "FROM history WHERE tenant = $1 AND key = $2) SELECT hid FROM history",
            caller, entry.StoredKey, ChangeRecord.Upsert, now, KvEvents.TtlChanged, entry.Version + 1, expiresAtMs, head);

    /// <summary>The key's entry, expired or not (null: none), and the head of its history chain (a deleted key keeps one).</summary>
    private static async Task<(KvEntry? Entry, long? Head)> CurrentKvAsync(NpgsqlConnection c, string tenant, string storedKey, bool withHead)
    {
        await using var command = Command(c, withHead ? SelectKvEntryOrHead : SelectKvEntry).Text(tenant).Text(storedKey);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        (KvEntry? Entry, long? Head) found = (null, null);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            found = ReadEntryOrHead(reader, found);
        }
        return found;
    }

    private const string SelectKvEntry = $"SELECT {KvEntryColumns} FROM kv_entries WHERE tenant = $1 AND key = $2";

    /// <summary>
    /// The entry, or the head a deleted key keeps, in one round trip (the two were two queries, one after the other, for
    /// every write of a new or deleted key): a row of kv_entries, else one of kv_deleted with nulls in the entry's columns.
    /// </summary>
    private const string SelectKvEntryOrHead =
        $"SELECT {KvEntryColumns}, NULL::bigint FROM kv_entries WHERE tenant = $1 AND key = $2 " +
        "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, last_hid FROM kv_deleted WHERE tenant = $1 AND key = $2";

    /// <summary>
    /// The keys of array $2, for a lateral look-up of each (<see cref="WhereKeyGiven"/>): one primary-key probe per key
    /// whatever the statistics say. <c>key = ANY($2)</c> got a plan that probed by tenant alone and filtered on the key,
    /// reading every key of the tenant, once the statistics described an emptied table (a DEL of every key, then
    /// autoanalyze): MGET of 10,000 keys took 4-5 s instead of 0.34 (session 45).
    /// </summary>
    private const string KeysGiven = "unnest($2::text[]) AS k(wanted)";

    /// <summary>The condition of <see cref="KeysGiven"/>'s lateral subquery (tenant $1); OFFSET 0 keeps it from being flattened into a join.</summary>
    private const string WhereKeyGiven = "WHERE tenant = $1 AND key = k.wanted OFFSET 0";

    /// <summary>Keys whose states one query reads (<see cref="ReadKvStatesAsync"/>).</summary>
    private const int KvStateChunk = 1000;

    /// <summary>
    /// The entry or head (<see cref="SelectKvEntryOrHead"/>) of each of <paramref name="keys"/> (distinct, at most
    /// <see cref="KvStateChunk"/>) in one round trip, into <paramref name="into"/>; a key in neither table gets (null, null).
    /// </summary>
    private static async Task ReadKvStatesAsync(NpgsqlConnection c, string tenant, string[] keys, Dictionary<string, (KvEntry? Entry, long? Head)> into)
    {
        foreach (var key in keys)
        {
            into[key] = (null, null);
        }
        await using var command = Command(c,
            $"SELECT e.* FROM {KeysGiven} CROSS JOIN LATERAL (SELECT {KvEntryColumns}, NULL::bigint, key FROM kv_entries {WhereKeyGiven}) e " +
            $"UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, d.last_hid, d.key FROM {KeysGiven} CROSS JOIN LATERAL (SELECT last_hid, key FROM kv_deleted {WhereKeyGiven}) d")
            .Text(tenant).TextArray(keys);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            var key = reader.GetString(8);
            into[key] = ReadEntryOrHead(reader, into[key]);
        }
    }

    private static (KvEntry? Entry, long? Head) ReadEntryOrHead(NpgsqlDataReader reader, (KvEntry? Entry, long? Head) found)
    {
        if (!reader.IsDBNull(0))
        {
            var entry = ReadKvEntry(reader);
            return (entry, entry.LastHistoryId);
        }
        // A key is in one of the two tables (a write moves it); should it be in both, the entry wins.
        return found.Entry is not null ? found : (null, reader.Int64OrNull(7));
    }

    /// <summary>
    /// <see cref="CurrentKvAsync"/> with the head, synchronously: for a transaction's keys read while it runs (its commands
    /// are synchronous, and the step's connection waits for them meanwhile).
    /// </summary>
    private static (KvEntry? Entry, long? Head) CurrentKv(NpgsqlConnection c, string tenant, string storedKey)
    {
        using var command = Command(c, SelectKvEntryOrHead).Text(tenant).Text(storedKey);
        using var reader = command.ExecuteReader();
        (KvEntry? Entry, long? Head) found = (null, null);
        while (reader.Read())
        {
            found = ReadEntryOrHead(reader, found);
        }
        return found;
    }

    private static KvEntry ReadKvEntry(NpgsqlDataReader r, int first = 0) =>
        new(r.GetString(first), r.GetString(first + 1), r.Int64OrNull(first + 2), r.GetInt64(first + 3), r.GetInt64(first + 4), r.GetInt64(first + 5),
            r.Int64OrNull(first + 6));

    private static KvEntry? LiveOrNull(KvEntry? entry, long now) => entry is not null && entry.IsLiveAt(now) ? entry : null;

    /// <summary>Live entries matching <paramref name="pattern"/> after <paramref name="afterKey"/>, in key (byte) order; the literal prefix bounds the scan.</summary>
    private static async Task<List<KvEntry>> SelectMatchingAsync(NpgsqlConnection c, string tenant, KvGlob pattern, string? afterKey, int limit, long now)
    {
        await using var command = SelectMatchingCommand(c, tenant, pattern, afterKey, limit, now);
        var items = new List<KvEntry>(Math.Min(limit, 256));
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            items.Add(ReadKvEntry(reader));
        }
        return items;
    }

    /// <summary><see cref="SelectMatchingAsync"/> blocking: a transaction's commands run synchronously inside its step (KEYS in MULTI).</summary>
    private static List<KvEntry> SelectMatching(NpgsqlConnection c, string tenant, KvGlob pattern, string? afterKey, int limit, long now)
    {
        using var command = SelectMatchingCommand(c, tenant, pattern, afterKey, limit, now);
        var items = new List<KvEntry>(Math.Min(limit, 256));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            items.Add(ReadKvEntry(reader));
        }
        return items;
    }

    /// <summary>A key matching the pattern ($2, a regular expression) by its stored or its shown name (tenant $1): <see cref="KvGlob.SqlCondition"/>.</summary>
    private static readonly string KvPatternCondition = KvGlob.SqlCondition("$1", "$2", "~", "strpos");

    private static NpgsqlCommand SelectMatchingCommand(NpgsqlConnection c, string tenant, KvGlob pattern, string? afterKey, int limit, long now)
    {
        // The upper bound only when there is one, written as such: `$6 IS NULL OR key < $6` is no index condition in a
        // generic plan, so a page past a prefix's last key went on through every later key of the tenant.
        var upper = UpperBound(pattern.Prefix);
        var command = Command(c,
            "SELECT key, '', expires_at, version, created_at, updated_at, last_hid FROM kv_entries " +
            "WHERE tenant = $1 AND " + KvPatternCondition + " AND (expires_at IS NULL OR expires_at > $3) AND key >= $4 AND key > $5 " +
            (upper is null ? "" : "AND key < $7 ") + "ORDER BY key LIMIT $6")
            .Text(tenant).Text(GlobToRegex(pattern.Sql)).Int(now).Text(pattern.Prefix).Text(afterKey ?? "").Int(limit);
        return upper is null ? command : command.Text(upper);
    }

    /// <summary>The smallest string above every key starting with <paramref name="prefix"/> in byte order (null: no bound).</summary>
    private static string? UpperBound(string prefix)
    {
        for (var i = prefix.Length - 1; i >= 0; i--)
        {
            // Raising the last UTF-16 unit that is not a surrogate and not the last BMP code point keeps byte order for UTF-8.
            if (!char.IsSurrogate(prefix[i]) && prefix[i] < '\uD7FF')
            {
                return prefix[..i] + (char)(prefix[i] + 1);
            }
        }
        return null;
    }

    /// <summary>SQLite GLOB (what <see cref="KvGlob.Sql"/> holds) as an anchored PostgreSQL regular expression.</summary>
    internal static string GlobToRegex(string glob)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < glob.Length; i++)
        {
            var ch = glob[i];
            switch (ch)
            {
                case '*':
                    regex.Append(".*");
                    break;
                case '?':
                    regex.Append('.');
                    break;
                case '[':
                    var end = i + 1;
                    if (end < glob.Length && glob[end] == '^')
                    {
                        end++;
                    }
                    if (end < glob.Length && glob[end] == ']')
                    {
                        end++;
                    }
                    end = glob.IndexOf(']', end);
                    if (end < 0)
                    {
                        regex.Append("\\[");
                        break;
                    }
                    AppendClass(regex, glob.AsSpan(i + 1, end - i - 1));
                    i = end;
                    break;
                default:
                    if ("\\^$.|?*+()[]{}".Contains(ch, StringComparison.Ordinal))
                    {
                        regex.Append('\\');
                    }
                    regex.Append(ch);
                    break;
            }
        }
        return regex.Append('$').ToString();
    }

    /// <summary>
    /// A SQLite GLOB class's inside as a PostgreSQL bracket expression: members read as SQLite reads them (a '-' between
    /// two members makes a range, else it is itself; a range ends the run, so <c>a-c-e</c> is a to c, '-' and e), the
    /// characters special in brackets escaped, and a reversed range left out (it holds nothing; PostgreSQL refused it).
    /// </summary>
    private static void AppendClass(StringBuilder regex, ReadOnlySpan<char> inside)
    {
        var invert = inside.Length > 0 && inside[0] == '^';
        if (invert)
        {
            inside = inside[1..];
        }
        var members = new StringBuilder();
        var prior = '\0';
        for (var j = 0; j < inside.Length; j++)
        {
            var c = inside[j];
            if (c == '-' && prior != '\0' && j + 1 < inside.Length)
            {
                var high = inside[++j];
                if (high >= prior)
                {
                    AppendMember(members, prior).Append('-');
                    AppendMember(members, high);
                }
                prior = '\0';
                continue;
            }
            if (prior != '\0')
            {
                AppendMember(members, prior);
            }
            prior = c;
        }
        if (prior != '\0')
        {
            AppendMember(members, prior);
        }
        if (members.Length == 0)
        {
            // Nothing is in the class: a class of U+0001 alone, which no key holds (keys refuse control characters).
            members.Append("\\u0001");
        }
        regex.Append('[').Append(invert ? "^" : "").Append(members).Append(']');
    }

    /// <summary>One member of a bracket expression: the characters special there escaped (a backslash before a letter or
    /// digit would make an escape such as \d, so nothing else is).</summary>
    private static StringBuilder AppendMember(StringBuilder members, char c) =>
        c is ']' or '\\' or '^' or '-' or '[' ? members.Append('\\').Append(c) : members.Append(c);
}
