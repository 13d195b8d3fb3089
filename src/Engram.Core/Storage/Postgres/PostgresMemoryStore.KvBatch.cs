using Engram.Core.Common;
using Engram.Core.KeyValue;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

public sealed partial class PostgresMemoryStore
{
    /// <summary>
    /// The key-value writes of one step (an MSET, a group of SETs, a transaction, a multi-key DEL), sent to PostgreSQL
    /// <see cref="MaxStatements"/> to a round trip (an <see cref="NpgsqlBatch"/>) instead of one each: a 20,000-command
    /// MULTI spent more of its time in round trips than in the statements (bench/README.md, session 33).
    /// <para>
    /// A write's statement is made from its key's state as the step's writes before it left it (version, created_at, live
    /// or not), which the step keeps in memory as it adds them. The one thing only the database knows after a write, the
    /// key's new history head, the next write of the key reads in SQL (<see cref="HeadOfKey"/>; a key's first write of
    /// the step passes the head read with its state). So a batch may hold many writes of one key. Statements run in the
    /// order they were added, each seeing the ones before it: seqs and history chains come out as one by one. A failed
    /// statement fails the batch and the transaction with it, as it failed the step before.
    /// </para>
    /// </summary>
    private sealed partial class KvWriteBatch(NpgsqlConnection connection) : IAsyncDisposable
    {
        /// <summary>Statements per round trip; their replies (a row each) stay far below a socket buffer.</summary>
        internal const int MaxStatements = 256;

        private readonly NpgsqlBatch _batch = new(connection);
        private readonly List<Action<NpgsqlDataReader>?> _outcomes = [];

        /// <summary>
        /// Adds <paramref name="statement"/> (which returns one row) after the SETs and deletes waiting before it
        /// (<see cref="AddSetAsync"/>, <see cref="AddDeleteAsync"/>); <paramref name="outcome"/>, if any, reads that row when
        /// the batch has run. Sends the batch when it is full.
        /// </summary>
        public async Task AddAsync(NpgsqlCommand statement, Action<NpgsqlDataReader>? outcome = null)
        {
            await FlushRunsAsync().ConfigureAwait(false);
            await AddStatementAsync(statement, outcome).ConfigureAwait(false);
        }

        /// <summary>Adds the set-based statements of the SETs or deletes waiting (one of the two runs is empty).</summary>
        private async Task FlushRunsAsync()
        {
            await FlushSetsAsync().ConfigureAwait(false);
            await FlushDeletesAsync().ConfigureAwait(false);
        }

        private Task AddStatementAsync(NpgsqlCommand statement, Action<NpgsqlDataReader>? outcome)
        {
            _batch.BatchCommands.Add(ForBatch(statement));
            _outcomes.Add(outcome);
            return _outcomes.Count >= MaxStatements ? SendAsync() : Task.CompletedTask;
        }

        /// <summary>Runs what the batch holds and gives each statement's row to its outcome.</summary>
        public async Task SendAsync()
        {
            await FlushRunsAsync().ConfigureAwait(false);
            if (_outcomes.Count == 0)
            {
                return;
            }
            await using (var reader = await _batch.ExecuteReaderAsync().ConfigureAwait(false))
            {
                for (var i = 0; i < _outcomes.Count; i++)
                {
                    if (i > 0)
                    {
                        await reader.NextResultAsync().ConfigureAwait(false);
                    }
                    if (!await reader.ReadAsync().ConfigureAwait(false))
                    {
                        throw new InvalidOperationException("a key-value write statement returned no row");
                    }
                    _outcomes[i]?.Invoke(reader);
                }
            }
            _batch.BatchCommands.Clear();
            _outcomes.Clear();
        }

        public ValueTask DisposeAsync() => _batch.DisposeAsync();
    }

    /// <summary>
    /// The queued writes (each a SET, an MSET or a change of one key, of its own caller), in order, in the transaction on
    /// <paramref name="c"/>: the keys' states read <see cref="KvStateChunk"/> a query, the writes sent in batches. Returns each
    /// queued write's outcome: a SET's results (<see cref="KvSetResult"/>[]), or the <see cref="ConflictException"/> of a single
    /// SET whose condition failed (it wrote nothing; a failed condition in an MSET fails the whole step); a change's
    /// decided outcome, or the exception its decision refused with (<see cref="AddChangeAsync"/>).
    /// </summary>
    private static async Task<object?[]> WriteBatchedAsync(NpgsqlConnection c, IReadOnlyList<GroupedKvWrite> queued, long now)
    {
        var outcomes = new object?[queued.Count];
        var states = new Dictionary<(string Tenant, string Key), (KvEntry? Entry, long? Head)>();
        await ReadStatesAsync(c, queued, states).ConfigureAwait(false);
        await using var batch = new KvWriteBatch(c);
        for (var q = 0; q < queued.Count; q++)
        {
            var (caller, writes, change) = queued[q];
            if (change is not null)
            {
                outcomes[q] = await AddChangeAsync(c, batch, caller, change, states, now).ConfigureAwait(false);
                continue;
            }
            var results = new KvSetResult[writes.Count];
            outcomes[q] = results;
            for (var i = 0; i < writes.Count; i++)
            {
                var write = writes[i];
                var slot = (caller.Tenant, write.StoredKey);
                var (current, head) = states[slot];
                var live = current is not null && current.IsLiveAt(now);
                try
                {
                    KvWrites.CheckCondition(caller, write, live);
                }
                catch (ConflictException refused) when (writes.Count == 1)
                {
                    outcomes[q] = refused;
                    break;
                }
                var (at, version) = (i, (current?.Version ?? 0) + 1);
                var entry = await batch.AddSetAsync(caller, write.StoredKey, write.ValueJson, write.ExpiresAtMs, current, head, live,
                    live ? KvEvents.Updated : KvEvents.Created, now, seq => results[at] = new KvSetResult(!live, version, seq)).ConfigureAwait(false);
                states[slot] = (entry, HeadFromTables); // its head is this write's history row, which the next write reads in SQL
            }
        }
        await batch.SendAsync().ConfigureAwait(false);
        return outcomes;
    }

    /// <summary>
    /// Adds the statement of a change of one key (<paramref name="change"/>), decided from the key's state as the writes
    /// before it in the step left it (<paramref name="states"/>, which it updates as <see cref="WriteBatchedAsync"/> does for a
    /// SET). Returns the decision's outcome, or the exception with which the decision refused (then nothing is added).
    /// </summary>
    private static async Task<object?> AddChangeAsync(NpgsqlConnection c, KvWriteBatch batch, Caller caller, KeyChange change,
        Dictionary<(string Tenant, string Key), (KvEntry? Entry, long? Head)> states, long now)
    {
        var slot = (caller.Tenant, change.StoredKey);
        var (current, head) = states[slot];
        var live = LiveOrNull(current, now);
        KeyDecision decision;
        try
        {
            decision = change.Decide(live, now);
        }
        catch (Exception refused)
        {
            return refused;
        }
        var (kind, json, expiresAtMs) = decision.Change;
        switch (kind)
        {
            case KvChangeKind.Set:
                var entry = await batch.AddSetAsync(caller, change.StoredKey, json!, expiresAtMs, current, head, live is not null, decision.Event, now)
                    .ConfigureAwait(false);
                states[slot] = (entry, HeadFromTables);
                break;
            case KvChangeKind.Delete when live is not null:
                states[slot] = (null, HeadFromTables);
                await batch.AddDeleteAsync(caller, change.StoredKey, decision.Event, now).ConfigureAwait(false);
                break;
            case KvChangeKind.Expire when live is not null:
                states[slot] = (live with { ExpiresAtMs = expiresAtMs, Version = live.Version + 1, UpdatedAtMs = now }, HeadFromTables);
                await batch.AddAsync(ExpireKvCommand(c, caller, live, expiresAtMs, head, now)).ConfigureAwait(false);
                break;
        }
        return decision.Outcome;
    }

    /// <summary>
    /// The states of every key the queued writes name, per tenant, <see cref="KvStateChunk"/> keys a query; one key (an
    /// unpipelined write alone) by the prepared single-key look-up.
    /// </summary>
    private static async Task ReadStatesAsync(NpgsqlConnection c, IReadOnlyList<GroupedKvWrite> queued,
        Dictionary<(string Tenant, string Key), (KvEntry? Entry, long? Head)> into)
    {
        foreach (var tenant in queued.Select(q => q.Caller.Tenant).Distinct(StringComparer.Ordinal))
        {
            var keys = queued.Where(q => q.Caller.Tenant == tenant)
                .SelectMany(q => q.Change is { } change ? [change.StoredKey] : q.Writes.Select(w => w.StoredKey)).Distinct(StringComparer.Ordinal).ToArray();
            if (keys.Length == 1)
            {
                into[(tenant, keys[0])] = await CurrentKvAsync(c, tenant, keys[0], withHead: true).ConfigureAwait(false);
                continue;
            }
            var read = new Dictionary<string, (KvEntry? Entry, long? Head)>(keys.Length, StringComparer.Ordinal);
            foreach (var chunk in keys.Chunk(KvStateChunk))
            {
                await ReadKvStatesAsync(c, tenant, chunk, read).ConfigureAwait(false);
            }
            foreach (var (key, state) in read)
            {
                into[(tenant, key)] = state;
            }
        }
    }
}
