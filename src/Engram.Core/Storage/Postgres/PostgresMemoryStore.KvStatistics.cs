namespace Engram.Core.Storage.Postgres;

/// <summary>
/// The key tables' planner statistics, brought up to date when the tables hold far more rows than the statistics say.
/// After a DEL of every key, autoanalyze records <c>kv_entries</c> as (nearly) empty; the prepared single-key lookups
/// then get plans that read the whole table, and keep them as the table refills, until autoanalyze comes round again
/// (up to a minute later): refilling 10,000 keys took an MSET 4 → 9-10 s and an MGET 0.13 → 2-2.8 s (session 31).
/// An ANALYZE replaces those plans (it invalidates them in every session). A writing instance checks every
/// <see cref="KvStatisticsInterval"/> in the background, and before a step of <see cref="ManyKeys"/> keys or more, whose
/// statements would otherwise all run on the stale plans.
/// </summary>
public sealed partial class PostgresMemoryStore
{
    /// <summary>Keys in one step from which it checks the statistics first.</summary>
    private const int ManyKeys = 1000;

    /// <summary>
    /// A key table is analyzed when PostgreSQL's count of its live rows is over twice what its statistics say, plus this
    /// (so that small tables, whose plans are cheap whatever they are, are left to autoanalyze).
    /// </summary>
    private const int StaleStatisticsSlack = 1000;

    /// <summary>How often, at most, an instance that writes checks the key tables' statistics; tests change it.</summary>
    internal TimeSpan KvStatisticsInterval { get; set; } = TimeSpan.FromSeconds(10);

    private long _lastKvStatisticsCheck = Environment.TickCount64;
    private Task _kvStatisticsCheck = Task.CompletedTask;
    private long _kvTablesAnalyzed;

    /// <summary>Key tables this instance has analyzed (<see cref="RefreshKvStatisticsAsync"/>); for tests.</summary>
    internal long KvTablesAnalyzed => Interlocked.Read(ref _kvTablesAnalyzed);

    /// <summary>
    /// Analyzes each key table (<c>kv_entries</c>, <c>kv_deleted</c>) whose live rows, as PostgreSQL's statistics
    /// collector counts them, are over twice its planner statistics' row count plus <see cref="StaleStatisticsSlack"/>.
    /// Returns how many it analyzed. Outside any transaction: ANALYZE blocks no reader or writer.
    /// </summary>
    internal Task<int> RefreshKvStatisticsAsync(CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var stale = new List<string>(2);
            await using (var command = Command(c,
                "SELECT c.relname::text FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid " +
                "WHERE c.oid IN (to_regclass('kv_entries'), to_regclass('kv_deleted')) AND s.n_live_tup > 2 * greatest(c.reltuples, 0) + $1")
                .Int(StaleStatisticsSlack))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    stale.Add(reader.GetString(0) == "kv_entries" ? "kv_entries" : "kv_deleted"); // a constant, never the catalog's text
                }
            }
            foreach (var table in stale)
            {
                await ExecuteAsync(c, "ANALYZE " + table, ct).ConfigureAwait(false);
                Interlocked.Increment(ref _kvTablesAnalyzed);
            }
            return stale.Count;
        }, ct);

    /// <summary>
    /// Before a step of <paramref name="keys"/> keys: brings stale statistics up to date (<see cref="RefreshKvStatisticsAsync"/>)
    /// when there are <see cref="ManyKeys"/> or more. A failure is left to the step, which meets the same database.
    /// </summary>
    private async Task RefreshKvStatisticsBeforeAsync(int keys, CancellationToken ct)
    {
        if (keys < ManyKeys)
        {
            return;
        }
        try
        {
            await RefreshKvStatisticsAsync(ct).ConfigureAwait(false);
        }
        catch (StoreException)
        {
            // The step runs on the statistics there are, and reports the database's state itself.
        }
    }

    /// <summary>
    /// Starts a check of the key tables' statistics in the background when the last one began more than
    /// <see cref="KvStatisticsInterval"/> ago and has ended (called by the log queue's leader after each write it ran).
    /// </summary>
    private void RefreshKvStatisticsNowAndThen() =>
        _kvStatisticsCheck = StartNowAndThen(ref _lastKvStatisticsCheck, KvStatisticsInterval, _kvStatisticsCheck, RefreshKvStatisticsAsync);
}
