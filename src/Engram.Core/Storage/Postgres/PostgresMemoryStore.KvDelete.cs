using Engram.Core.Common;
using Engram.Core.KeyValue;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Deletes of many keys as set-based statements: a multi-key DEL, a pattern cleanup's chunk, the TTL sweeper's, and the
/// consecutive deletes of a step's batch (pipelined DELs in a group, a transaction's). Each statement deletes up to
/// <see cref="KvDeleteSetChunk"/> keys with their change-log entries and history rows, in one round trip, where each key
/// had been a statement of its own (a 70,000-key DEL over RESP took 8.4-8.7 s, now 1.4-2.1 s; bench/README.md, session 45).
/// </summary>
public sealed partial class PostgresMemoryStore
{
    /// <summary>Keys one delete statement takes (its arrays are parameters; its CTEs hold this many rows).</summary>
    private const int KvDeleteSetChunk = 1000;

    private sealed partial class KvWriteBatch
    {
        private readonly List<string> _deleteTenants = [];
        private readonly List<string> _deleteKeys = [];
        private readonly HashSet<(string Tenant, string Key)> _deleteSlots = [];
        private (string Event, string Actor, long Now) _deleteKind;

        /// <summary>
        /// Adds the delete of the key's live entry (which the step's state says is there): a change-log entry, a history row
        /// with the deleted version and expiry, and the head the deleted key keeps. Consecutive deletes of distinct keys with
        /// the same event, actor and time share a set-based statement (<see cref="DeleteKvSet"/>): a redis-py pipeline of
        /// 20,000 DELs had been 20,000 statements. Anything else added sends the deletes before it first, so statements
        /// still run in the order they were added.
        /// </summary>
        public async Task AddDeleteAsync(Caller caller, string storedKey, string historyEvent, long now)
        {
            await FlushSetsAsync().ConfigureAwait(false);
            if (_deleteKeys.Count > 0 && (_deleteKind != (historyEvent, caller.Actor, now) || _deleteSlots.Contains((caller.Tenant, storedKey))))
            {
                await FlushDeletesAsync().ConfigureAwait(false);
            }
            _deleteKind = (historyEvent, caller.Actor, now);
            _deleteSlots.Add((caller.Tenant, storedKey));
            _deleteTenants.Add(caller.Tenant);
            _deleteKeys.Add(storedKey);
            if (_deleteKeys.Count >= KvDeleteSetChunk)
            {
                await FlushDeletesAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Adds the waiting deletes as one set-based statement.</summary>
        private Task FlushDeletesAsync()
        {
            if (_deleteKeys.Count == 0)
            {
                return Task.CompletedTask;
            }
            var (historyEvent, actor, now) = _deleteKind;
            var statement = DeleteKvSetCommand(connection, [.. _deleteTenants], [.. _deleteKeys], actor, historyEvent, expired: false, now);
            _deleteTenants.Clear();
            _deleteKeys.Clear();
            _deleteSlots.Clear();
            return AddStatementAsync(statement, null);
        }
    }

    public Task<int> DeleteManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default)
    {
        if (storedKeys.Count == 0)
        {
            return Task.FromResult(0);
        }
        var tenants = new string[storedKeys.Count];
        Array.Fill(tenants, caller.Tenant);
        var keys = storedKeys as string[] ?? [.. storedKeys];
        return LoggedAsync(c => DeleteKvSetAsync(c, tenants, keys, caller.Actor, KvEvents.Deleted, expired: false, NowMs, ct), durability, ct);
    }

    /// <summary>
    /// Deletes the entries of (<paramref name="tenants"/>[i], <paramref name="keys"/>[i]) (distinct pairs) that are live at
    /// <paramref name="now"/> (<paramref name="expired"/>: those past their expiry instead), each with a change-log entry
    /// and a history row (<paramref name="historyEvent"/>, <paramref name="actor"/>) in the order given; inside the caller's
    /// step, under the log lock. Returns how many went.
    /// </summary>
    private static async Task<int> DeleteKvSetAsync(NpgsqlConnection c, string[] tenants, string[] keys, string actor, string historyEvent, bool expired,
        long now, CancellationToken ct)
    {
        var deleted = 0;
        for (var start = 0; start < keys.Length; start += KvDeleteSetChunk)
        {
            var count = Math.Min(KvDeleteSetChunk, keys.Length - start);
            await using var command = DeleteKvSetCommand(c, tenants.AsSpan(start, count).ToArray(), keys.AsSpan(start, count).ToArray(), actor, historyEvent,
                expired, now);
            deleted += (int)(long)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }
        return deleted;
    }

    /// <summary>The set-based delete (<see cref="DeleteKvSet"/>) of up to <see cref="KvDeleteSetChunk"/> keys; its row: how many went.</summary>
    private static NpgsqlCommand DeleteKvSetCommand(NpgsqlConnection c, string[] tenants, string[] keys, string actor, string historyEvent, bool expired,
        long now) =>
        Command(c, expired ? DeleteExpiredKvSet : DeleteLiveKvSet)
            .TextArray(tenants).TextArray(keys).Int(now).Text(historyEvent).Text(actor).Text(ChangeRecord.KeyValueEntity).Text(ChangeRecord.Delete);

    private static readonly string DeleteLiveKvSet = DeleteKvSet("e.expires_at IS NULL OR e.expires_at > $3");
    private static readonly string DeleteExpiredKvSet = DeleteKvSet("e.expires_at IS NOT NULL AND e.expires_at <= $3");

    /// <summary>
    /// The set-based delete: $1/$2 the tenants and keys, $3 the time, $4 the history event, $5 the actor, $6/$7 the change
    /// log's entity and op; <paramref name="condition"/> picks the entries (alias e). Seqs follow the step's
    /// (<c>engram.log_seq</c>, which statements before it in a batch have moved) in the order given (ordinality); the
    /// history row keeps the deleted version and expiry, no value, and links to the entry's head; kv_deleted keeps the new
    /// head. The main query moves the step's seq past the changes: it counts the numbered rows, so PostgreSQL has them (and
    /// their seqs) before it runs.
    /// <para>
    /// The plan is pinned, as statistics cannot be trusted here (a table that grew since its last ANALYZE, or a hash over
    /// every key of the table for 1,000 of them, 48 of the statement's 124 ms): each key is one primary-key probe (the
    /// lateral subquery's OFFSET 0 keeps it from being flattened into a join), and the delete finds the rows by the
    /// position that probe read (a TID scan; no other write moves them, as every key-value write holds the log lock).
    /// </para>
    /// </summary>
    private static string DeleteKvSet(string condition) =>
        "WITH doomed AS (SELECT e.row_id, e.tenant, e.key, e.version, e.expires_at, e.last_hid, " +
        "current_setting('engram.log_seq')::bigint + row_number() OVER (ORDER BY k.ord) AS seq " +
        "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(tenant, key, ord) " +
        "CROSS JOIN LATERAL (SELECT ctid AS row_id, * FROM kv_entries e WHERE e.tenant = k.tenant AND e.key = k.key OFFSET 0) e " +
        $"WHERE {condition}), " +
        "logged AS (INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, tenant, $6, key, $7, $3 FROM doomed), " +
        "history AS (INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) " +
        "SELECT tenant, key, seq, $4, $5, $3, version, NULL, expires_at, last_hid FROM doomed ORDER BY seq RETURNING hid, tenant, key), " +
        "gone AS (DELETE FROM kv_entries WHERE ctid = ANY (ARRAY(SELECT row_id FROM doomed))), " +
        "kept AS (INSERT INTO kv_deleted(tenant, key, last_hid) SELECT tenant, key, hid FROM history " +
        "ON CONFLICT (tenant, key) DO UPDATE SET last_hid = excluded.last_hid) " +
        "SELECT n, set_config('engram.log_seq', (current_setting('engram.log_seq')::bigint + n)::text, true) FROM (SELECT count(*) AS n FROM doomed) counted";
}
