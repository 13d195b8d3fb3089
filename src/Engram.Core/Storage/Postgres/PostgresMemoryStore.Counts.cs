using Engram.Core.Memories;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

public sealed partial class PostgresMemoryStore
{
    /// <summary>
    /// The counts the triggers keep, as one table expression: the folded counts (<c>row_counts</c>) and the deltas appended
    /// since (<c>row_count_deltas</c>, see <see cref="FoldRowCountsAsync"/>); sum <c>n</c> per group.
    /// </summary>
    internal const string KeptCounts =
        "(SELECT tenant, kind, tier, type, n FROM row_counts UNION ALL SELECT tenant, kind, tier, type, n FROM row_count_deltas) AS kept";

    /// <summary>The counts the triggers keep in every writing transaction, summed over tenants: no scan of the counted tables.</summary>
    public Task<StoreCounts> ReadCountsAsync(CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var counts = new StoreCounts.Builder();
            await using var command = Command(c, $"SELECT kind, tier, type, SUM(n)::bigint FROM {KeptCounts} GROUP BY kind, tier, type");
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                counts.Add(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3));
            }
            return counts.Build();
        }, ct);

    /// <summary>
    /// Moves the count deltas the triggers appended (<c>row_count_deltas</c>) into <c>row_counts</c>, in one statement, so
    /// that readers sum a few rows again. The triggers append instead of updating <c>row_counts</c> because a row updated
    /// many times in one transaction is reached through a chain of its versions (bench/README.md, session 33);
    /// here each group's row is updated once. Instances fold in turn (a transaction-level advisory lock; one that finds it
    /// taken skips). Relaxed durability: a fold lost to a crash leaves the deltas, which readers count as before. Returns
    /// the delta rows moved (0 when another instance was folding).
    /// </summary>
    internal Task<int> FoldRowCountsAsync(CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await using (var locked = Command(c, "SELECT pg_try_advisory_xact_lock($1, $2)"))
            {
                locked.Parameters.Add(new NpgsqlParameter { Value = JobLockClass, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
                locked.Parameters.Add(new NpgsqlParameter { Value = JobKey("count-fold"), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
                if (await locked.ExecuteScalarAsync(ct).ConfigureAwait(false) is not true)
                {
                    return 0;
                }
            }
            await using var command = Command(c,
                "WITH moved AS (DELETE FROM row_count_deltas RETURNING tenant, kind, tier, type, n), " +
                "grouped AS (INSERT INTO row_counts(tenant, kind, tier, type, n) SELECT tenant, kind, tier, type, SUM(n) FROM moved GROUP BY 1, 2, 3, 4 " +
                "ON CONFLICT (tenant, kind, tier, type) DO UPDATE SET n = row_counts.n + excluded.n) " +
                "SELECT count(*)::int FROM moved");
            return (int)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, WriteDurability.Relaxed, ct);

    /// <summary>How often, at most, an instance that writes folds the count deltas (<see cref="FoldRowCountsAsync"/>); tests change it.</summary>
    internal TimeSpan CountFoldInterval { get; set; } = TimeSpan.FromSeconds(10);

    private long _lastCountFold = Environment.TickCount64;
    private Task _countFold = Task.CompletedTask;

    /// <summary>
    /// Starts a fold of the count deltas in the background when the last one began more than <see cref="CountFoldInterval"/>
    /// ago and has ended (called by the log queue's leader after each write it ran). A failed fold is left to the next one:
    /// the deltas stay counted where they are.
    /// </summary>
    private void FoldCountsNowAndThen() =>
        // Whatever stops a fold (the database away, the store closing), the deltas stay counted where they are and the
        // next fold moves them.
        _countFold = StartNowAndThen(ref _lastCountFold, CountFoldInterval, _countFold, FoldRowCountsAsync);

    /// <summary>
    /// Starts <paramref name="work"/> in the background when its last start (<paramref name="lastStart"/>, ticks) was more
    /// than <paramref name="interval"/> ago and that run (<paramref name="running"/>) has ended; returns the task now running.
    /// Nothing waits for the work, so it never faults: a failure is left to the next run, and DisposeAsync awaits the task.
    /// </summary>
    private Task StartNowAndThen(ref long lastStart, TimeSpan interval, Task running, Func<CancellationToken, Task> work)
    {
        var now = Environment.TickCount64;
        if (now - Volatile.Read(ref lastStart) < (long)interval.TotalMilliseconds || !running.IsCompleted || _disposed)
        {
            return running;
        }
        Volatile.Write(ref lastStart, now);
        return Task.Run(async () =>
        {
            try
            {
                await work(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The next run tries again.
            }
        });
    }

    /// <summary>A tenant's live memories by type and tier: the kept counts less the rows past their TTL not swept yet.</summary>
    private static async Task<MemoryCounts> CountedStatsAsync(NpgsqlConnection c, string tenant, long now, CancellationToken ct)
    {
        var counts = new Dictionary<(string Tier, string Type), long>();
        await using (var command = Command(c,
            $"SELECT tier, type, SUM(n)::bigint FROM {KeptCounts} WHERE tenant = $1 AND kind = 'memory' GROUP BY tier, type HAVING SUM(n) > 0").Text(tenant))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                counts[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
            }
        }
        await using (var command = Command(c,
            "SELECT tier, type, COUNT(*) FROM memories WHERE expires_at IS NOT NULL AND expires_at <= $1 AND tenant = $2 GROUP BY tier, type").Int(now).Text(tenant))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var key = (reader.GetString(0), reader.GetString(1));
                counts[key] = counts.GetValueOrDefault(key) - reader.GetInt64(2);
            }
        }
        return MemoryCounts.FromTierAndType(counts);
    }
}
