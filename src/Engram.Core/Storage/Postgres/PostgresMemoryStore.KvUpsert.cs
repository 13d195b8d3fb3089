using Engram.Core.Common;
using Engram.Core.KeyValue;
using Npgsql;
using NpgsqlTypes;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// SETs of many keys as set-based statements: consecutive SETs of a step (an MSET, a pipeline's group, a transaction's
/// changes) go as one statement of up to <see cref="KvWriteBatch.MaxSetRows"/> keys instead of a statement each (an MSET of
/// 70,000 new keys took 9.5 s; bench/README.md, session 46).
/// </summary>
public sealed partial class PostgresMemoryStore
{
    private sealed partial class KvWriteBatch
    {
        /// <summary>Keys one set-based SET statement takes (its arrays are parameters; its CTEs hold this many rows).</summary>
        internal const int MaxSetRows = 1000;

        private readonly List<PendingSet> _sets = [];
        private readonly HashSet<(string Tenant, string Key)> _setKeys = [];

        /// <summary>
        /// A SET waiting for its statement: the entry it writes (in <paramref name="Tenant"/>), the history row's event and actor,
        /// the key's history head (<see cref="HeadFromTables"/>: the statement reads it), whether kv_deleted may hold the
        /// key, and what to do with the write's seq.
        /// </summary>
        private sealed record PendingSet(string Tenant, KvEntry Entry, string Event, string Actor, long? Head, bool MaybeDeleted, Action<long>? Outcome);

        /// <summary>
        /// Adds the SET of <paramref name="json"/> (expiry <paramref name="expiresAtMs"/>) over the key's state
        /// (<paramref name="current"/>, <paramref name="head"/>, <paramref name="live"/>) as <see cref="WriteKvCommand"/>
        /// writes one, and returns the entry written (less its history id). Consecutive SETs of distinct keys share a
        /// statement; a second SET of a key, or any other statement, sends the SETs before it first, so statements still run
        /// in the order they were added. <paramref name="outcome"/> gets the write's seq once the batch has run.
        /// </summary>
        public async Task<KvEntry> AddSetAsync(Caller caller, string storedKey, string json, long? expiresAtMs, KvEntry? current, long? head, bool live,
            string historyEvent, long now, Action<long>? outcome = null)
        {
            await FlushDeletesAsync().ConfigureAwait(false);
            if (!_setKeys.Add((caller.Tenant, storedKey)))
            {
                await FlushSetsAsync().ConfigureAwait(false);
                _setKeys.Add((caller.Tenant, storedKey));
            }
            var entry = WrittenEntry(storedKey, json, expiresAtMs, current, live, now);
            // A key is in one of kv_entries and kv_deleted: with no entry and a head, it is a deleted key (or one this step
            // changed, whose table only the database knows).
            _sets.Add(new PendingSet(caller.Tenant, entry, historyEvent, caller.Actor, head, current is null && head is not null, outcome));
            if (_sets.Count >= MaxSetRows)
            {
                await FlushSetsAsync().ConfigureAwait(false);
            }
            return entry;
        }

        /// <summary>Adds the waiting SETs as one statement (a single one as <see cref="WriteKvCommand"/>'s).</summary>
        private Task FlushSetsAsync()
        {
            if (_sets.Count == 0)
            {
                return Task.CompletedTask;
            }
            var sets = _sets.ToArray();
            _sets.Clear();
            _setKeys.Clear();
            if (sets.Length == 1)
            {
                var (tenant, entry, historyEvent, actor, head, _, outcome) = sets[0];
                return AddStatementAsync(SetKvCommand(connection, tenant, actor, entry, head, historyEvent),
                    outcome is null ? null : row => outcome(row.GetInt64(0)));
            }
            return AddStatementAsync(SetKvSetCommand(connection, sets), row =>
            {
                var first = row.GetInt64(0);
                for (var i = 0; i < sets.Length; i++)
                {
                    sets[i].Outcome?.Invoke(first + i);
                }
            });
        }

        /// <summary>
        /// The set-based SET (<see cref="UpsertKvSet"/>) of <paramref name="sets"/> (distinct keys), seqs in their order; its row: the first seq.
        /// </summary>
        private static NpgsqlCommand SetKvSetCommand(NpgsqlConnection c, PendingSet[] sets)
        {
            var n = sets.Length;
            var (tenants, keys, values, actors, events) = (new string[n], new string[n], new string[n], new string[n], new string[n]);
            var (expiries, versions, created, heads) = (new long?[n], new long[n], new long[n], new long?[n]);
            var (fromTables, maybeDeleted) = (new bool[n], new bool[n]);
            for (var i = 0; i < n; i++)
            {
                var set = sets[i];
                (tenants[i], keys[i], values[i], actors[i], events[i]) = (set.Tenant, set.Entry.StoredKey, set.Entry.ValueJson, set.Actor, set.Event);
                (expiries[i], versions[i], created[i]) = (set.Entry.ExpiresAtMs, set.Entry.Version, set.Entry.CreatedAtMs);
                fromTables[i] = set.Head == HeadFromTables;
                heads[i] = fromTables[i] ? null : set.Head;
                maybeDeleted[i] = set.MaybeDeleted;
            }
            var command = Command(c, UpsertKvSet).TextArray(tenants).TextArray(keys).TextArray(values);
            Array(command, expiries, NpgsqlDbType.Bigint);
            Array(command, versions, NpgsqlDbType.Bigint);
            Array(command, created, NpgsqlDbType.Bigint);
            Array(command, heads, NpgsqlDbType.Bigint);
            Array(command, fromTables, NpgsqlDbType.Boolean);
            Array(command, maybeDeleted, NpgsqlDbType.Boolean);
            return command.TextArray(events).TextArray(actors).Int(sets[0].Entry.UpdatedAtMs)
                .Text(ChangeRecord.KeyValueEntity).Text(ChangeRecord.Upsert);
        }

        private static void Array<T>(NpgsqlCommand command, T[] values, NpgsqlDbType element) =>
            command.Parameters.Add(new NpgsqlParameter { Value = values, NpgsqlDbType = NpgsqlDbType.Array | element });
    }

    /// <summary>
    /// The set-based SET: $1-$11 the rows' tenants, keys, values, expiries, versions, created_at, history heads, whether the
    /// statement reads the head itself (<see cref="HeadOfKey"/>'s look-ups), whether kv_deleted may hold the key, history
    /// events and actors; $12 the time; $13/$14 the change log's entity and op. Writes what <see cref="WriteKvCommand"/>
    /// writes for each row, seqs following the step's in the order given (ordinality), and moves the step's seq past them.
    /// <para>
    /// The plan is pinned as in <see cref="DeleteKvSet"/>: kv_deleted is probed per key by its primary key (OFFSET 0 keeps the
    /// lateral subquery a probe) and only for keys it may hold, and rows are deleted by the position the probe read. The
    /// main query's aggregate reads every row of <c>w</c> (materialized: it is read more than once) before it sets the seq.
    /// </para>
    /// </summary>
    private const string UpsertKvSet =
        "WITH w AS (SELECT t.*, current_setting('engram.log_seq')::bigint + t.ord AS seq " +
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bool[], $9::bool[], $10::text[], $11::text[]) " +
        "WITH ORDINALITY AS t(tenant, key, value, expires_at, version, created_at, head, from_tables, maybe_deleted, event, actor, ord)), " +
        "logged AS (INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, tenant, $13, key, $14, $12 FROM w), " +
        "history AS (INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) " +
        "SELECT tenant, key, seq, event, actor, $12, version, value, expires_at, CASE WHEN from_tables THEN coalesce(" +
        "(SELECT e.last_hid FROM kv_entries e WHERE e.tenant = w.tenant AND e.key = w.key), " +
        "(SELECT d.last_hid FROM kv_deleted d WHERE d.tenant = w.tenant AND d.key = w.key)) ELSE head END " +
        "FROM w ORDER BY seq RETURNING hid, seq), " +
        "undeleted AS (DELETE FROM kv_deleted WHERE ctid = ANY (ARRAY(SELECT d.row_id FROM w " +
        "CROSS JOIN LATERAL (SELECT d.ctid AS row_id FROM kv_deleted d WHERE d.tenant = w.tenant AND d.key = w.key OFFSET 0) d WHERE w.maybe_deleted))), " +
        "written AS (INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid) " +
        "SELECT w.tenant, w.key, w.value, w.expires_at, w.version, w.seq, w.created_at, $12, h.hid FROM w JOIN history h ON h.seq = w.seq " +
        "ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version, seq = excluded.seq, " +
        "created_at = excluded.created_at, updated_at = excluded.updated_at, last_hid = excluded.last_hid) " +
        "SELECT min(seq), set_config('engram.log_seq', max(seq)::text, true) FROM w";
}
