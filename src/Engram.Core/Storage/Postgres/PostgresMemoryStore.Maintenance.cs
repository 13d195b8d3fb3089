using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// <c>engram maintenance --store postgres://…</c>: PostgreSQL's own upkeep (VACUUM, ANALYZE, REINDEX) on
/// Engram's tables, and an integrity check of what Engram relies on that the database's constraints do not
/// enforce (the change log's continuity, the kept counts), plus amcheck's B-tree verification when the
/// extension is installed. Each runs beside live instances: REINDEX is CONCURRENTLY, VACUUM (not FULL) takes
/// no lock that blocks reads or writes. Statements here have no time limit (a vacuum of a large table is long).
/// </summary>
public sealed partial class PostgresMemoryStore
{
    /// <summary>Problems reported by <see cref="CheckIntegrityAsync"/>, at most.</summary>
    /// <summary>store_meta key: the newest seq whose key-value log entry was pruned with its history (the log may have gaps up to it).</summary>
    internal const string ChangeLogPrunedThroughKey = "changelog_pruned_through";

    private static async Task<long> CountAboveAsync(NpgsqlConnection c, long seq, CancellationToken ct)
    {
        await using var command = Maintenance(c, "SELECT count(*) FROM changelog WHERE seq > $1").Int(seq);
        return (long)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private const int MaxIntegrityProblems = 50;

    /// <summary>
    /// Checks the database without changing it. Returns what was checked and what is wrong (empty when sound).
    /// </summary>
    public Task<(IReadOnlyList<string> Checked, IReadOnlyList<string> Problems)> CheckIntegrityAsync(CancellationToken ct = default) =>
        ReadAsync<(IReadOnlyList<string>, IReadOnlyList<string>)>(async c =>
        {
            var done = new List<string>();
            var problems = new List<string>();
            // One snapshot for every comparison, so that writes committing meanwhile cannot look like damage.
            await using var transaction = await c.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);

            // The log: seqs are given from log_head in commit order, contiguous; the only entries ever removed are key-value
            // ones pruned with their history, all at or below store_meta's changelog_pruned_through (0: none).
            await using (var command = Maintenance(c,
                "SELECT (SELECT seq FROM log_head), coalesce(max(seq), 0), coalesce(min(seq), 1), count(*), " +
                $"coalesce((SELECT value::bigint FROM store_meta WHERE key = '{ChangeLogPrunedThroughKey}'), 0) FROM changelog"))
            {
                long head, max, min, count, pruned;
                await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
                {
                    await reader.ReadAsync(ct).ConfigureAwait(false);
                    (head, max, min, count, pruned) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
                }
                if (head < max || (head > max && head > pruned))
                {
                    problems.Add($"change log: log_head says seq {head}, the newest entry is {max} (followers would {(head < max ? "never see entries above the head" : "wait for entries that do not exist")})");
                }
                // Contiguous above the pruned part: every seq from there (or from the oldest entry) to the newest is present.
                var from = Math.Max(pruned, min - 1);
                var above = pruned > 0 && count > 0 ? await CountAboveAsync(c, from, ct).ConfigureAwait(false) : count;
                if (count > 0 && max > from && above != max - from)
                {
                    var missing = max - from - above;
                    problems.Add($"change log: {missing} {(missing == 1 ? "entry" : "entries")} missing between seq {from + 1} and {max} (a follower that reached the gap skipped them)");
                }
                done.Add(pruned > 0
                    ? $"change log: {count:N0} entries, contiguous from seq {from + 1} up to seq {max} (key-value entries pruned with their history up to seq {pruned})"
                    : $"change log: {count:N0} entries, contiguous up to seq {max}");
            }

            // The counts the triggers keep (what /v1/stats and the metrics show) against the rows themselves.
            var kept = new Dictionary<(string Tenant, string Kind, string Tier, string Type), long>();
            await using (var command = Maintenance(c, $"SELECT tenant, kind, tier, type, SUM(n)::bigint FROM {KeptCounts} GROUP BY 1, 2, 3, 4 HAVING SUM(n) <> 0"))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    kept[(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3))] = reader.GetInt64(4);
                }
            }
            var actual = new Dictionary<(string Tenant, string Kind, string Tier, string Type), long>();
            await using (var command = Maintenance(c, """
                SELECT tenant, 'memory', tier, type, count(*) FROM memories GROUP BY tenant, tier, type
                UNION ALL SELECT tenant, 'kv', '', '', count(*) FROM kv_entries GROUP BY tenant
                UNION ALL SELECT tenant, 'entity', '', '', count(*) FROM graph_entities GROUP BY tenant
                UNION ALL SELECT tenant, 'relation', '', '', count(*) FROM graph_relations GROUP BY tenant
                """))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    actual[(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3))] = reader.GetInt64(4);
                }
            }
            foreach (var key in kept.Keys.Union(actual.Keys).OrderBy(k => k.ToString(), StringComparer.Ordinal))
            {
                var (k, a) = (kept.GetValueOrDefault(key), actual.GetValueOrDefault(key));
                if (k != a && problems.Count < MaxIntegrityProblems)
                {
                    var what = key.Kind == "memory" ? $"memories of tier {key.Tier}, type {key.Type}" : key.Kind;
                    problems.Add($"kept counts: tenant {key.Tenant}, {what}: counted {k:N0}, stored {a:N0} (stats and metrics show the counted figure)");
                }
            }
            done.Add($"kept counts: {actual.Count} groups against the rows");

            // A key is in one of kv_entries and kv_deleted (a write moves it); each names the head of the key's own history
            // chain. A key left in both, or a head that is another key's row, would make the next write link its history
            // to the wrong row.
            await using (var command = Maintenance(c, """
                SELECT (SELECT count(*) FROM kv_deleted d JOIN kv_entries e USING (tenant, key)),
                       (SELECT count(*) FROM kv_entries e LEFT JOIN kv_history h ON h.hid = e.last_hid
                         WHERE e.last_hid IS NOT NULL AND (h.hid IS NULL OR h.tenant <> e.tenant OR h.key <> e.key)),
                       (SELECT count(*) FROM kv_deleted d LEFT JOIN kv_history h ON h.hid = d.last_hid
                         WHERE h.hid IS NULL OR h.tenant <> d.tenant OR h.key <> d.key),
                       (SELECT count(*) FROM kv_entries) + (SELECT count(*) FROM kv_deleted)
                """))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                var (both, entryHeads, deletedHeads) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
                if (both > 0)
                {
                    problems.Add($"key-value heads: {both:N0} {(both == 1 ? "key is" : "keys are")} both stored and deleted (kv_entries and kv_deleted)");
                }
                if (entryHeads + deletedHeads > 0)
                {
                    problems.Add($"key-value heads: {entryHeads + deletedHeads:N0} {(entryHeads + deletedHeads == 1 ? "key names" : "keys name")} a history head " +
                        "that is missing or another key's (kv_entries.last_hid, kv_deleted.last_hid)");
                }
                done.Add($"key-value heads: {reader.GetInt64(3):N0} keys, each in one table, each head its own key's history row");
            }

            // amcheck, when installed: every B-tree index of Engram's tables agrees with itself (bt_index_check takes
            // only the lock a SELECT takes). Engram does not install extensions in an operator's database.
            var amcheck = await ScalarAsync<long>(c, "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'", ct).ConfigureAwait(false) > 0;
            if (amcheck)
            {
                var indexes = new List<string>();
                await using (var command = Maintenance(c, """
                    SELECT i.indexrelid::regclass::text FROM pg_index i
                    JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_am a ON a.oid = x.relam
                    WHERE t.relname = ANY($1) AND t.relnamespace = current_schema()::regnamespace AND a.amname = 'btree' ORDER BY 1
                    """))
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = PostgresSchema.Tables });
                    await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    {
                        indexes.Add(reader.GetString(0));
                    }
                }
                foreach (var index in indexes)
                {
                    try
                    {
                        await using var check = Maintenance(c, "SELECT bt_index_check($1::regclass, true)");
                        check.Parameters.Add(new NpgsqlParameter { Value = index });
                        await check.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    }
                    catch (PostgresException ex) when (ex.SqlState.StartsWith("XX", StringComparison.Ordinal) && problems.Count < MaxIntegrityProblems)
                    {
                        problems.Add($"amcheck: index {index}: {ex.MessageText} (engram maintenance reindex --store rebuilds it)");
                    }
                }
                done.Add($"amcheck: {indexes.Count} B-tree indexes verified");
            }
            else
            {
                done.Add("amcheck: not installed, indexes not verified (CREATE EXTENSION amcheck; to include them)");
            }
            return (done, problems);
        }, ct);

    /// <summary>VACUUM (ANALYZE) of Engram's tables, or VACUUM FULL (rewrites each table, blocking it meanwhile); the database's size before and after.</summary>
    public Task<(long Before, long After)> VacuumAsync(bool full, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var before = await ScalarAsync<long>(c, "SELECT pg_database_size(current_database())", ct).ConfigureAwait(false);
            await using (var command = Maintenance(c, $"VACUUM ({(full ? "FULL, " : "")}ANALYZE) {string.Join(", ", PostgresSchema.Tables)}"))
            {
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return (before, await ScalarAsync<long>(c, "SELECT pg_database_size(current_database())", ct).ConfigureAwait(false));
        }, ct);

    /// <summary>ANALYZE of Engram's tables: fresh statistics for the planner.</summary>
    public Task AnalyzeAsync(CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            await using var command = Maintenance(c, "ANALYZE " + string.Join(", ", PostgresSchema.Tables));
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, ct);

    /// <summary>REINDEX TABLE CONCURRENTLY for each of Engram's tables: rebuilt indexes without blocking writes.</summary>
    public Task ReindexTablesAsync(CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            foreach (var table in PostgresSchema.Tables)
            {
                await using var command = Maintenance(c, $"REINDEX TABLE CONCURRENTLY {table}");
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return 0;
        }, ct);

    private static NpgsqlCommand Maintenance(NpgsqlConnection c, string sql) => new(sql, c) { CommandTimeout = 0 };
}
