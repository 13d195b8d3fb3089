using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// The key tables' statistics after a DEL of every key: an ANALYZE of the emptied table (as autoanalyze makes) leaves
/// plans that read the whole table as it refills. The store analyzes a key table whose rows have outgrown its
/// statistics, before a step of many keys and now and then after writes, and the set-based delete does not depend on them.
/// </summary>
public sealed class PostgresKvStatisticsTests
{
    private static readonly Caller Acme = new("acme", "test");

    [Fact]
    public async Task Statistics_of_an_emptied_key_table_are_brought_up_to_date_as_it_refills()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        store.KvStatisticsInterval = TimeSpan.MaxValue; // this test asks for the background check itself, below
        IKeyValueStore kv = store;
        // Autoanalyze would come round within a minute and could do the store's work before it: the window it leaves, held open.
        await ExecuteAsync(url, "ALTER TABLE kv_entries SET (autovacuum_enabled = false); ALTER TABLE kv_deleted SET (autovacuum_enabled = false)");
        var keys = Enumerable.Range(0, 3_000).Select(i => $"stats:{i:D5}").ToArray();
        await kv.SetManyKvAsync(Acme, [.. keys.Select(k => new KvWrite(k, "1", null))], WriteDurability.Relaxed);
        (await kv.DeleteManyKvAsync(Acme, keys, WriteDurability.Relaxed)).Should().Be(3_000);
        // What autoanalyze records after the DEL: no entries. kv_deleted has 3,000 rows its statistics have never seen.
        await ExecuteAsync(url, "ANALYZE kv_entries");
        (await ReltuplesAsync(url, "kv_entries")).Should().Be(0);

        // The refill, a step of many keys, first brings the statistics of kv_deleted up to date.
        await EventuallyAsync(async () => await LiveRowsAsync(url, "kv_deleted") >= 3_000);
        (await ReltuplesAsync(url, "kv_deleted")).Should().BeLessThan(3_000, "kv_deleted has not been analyzed since it filled");
        await kv.SetManyKvAsync(Acme, [.. keys.Select(k => new KvWrite(k, "2", null))], WriteDurability.Relaxed);
        (await ReltuplesAsync(url, "kv_deleted")).Should().BeGreaterThanOrEqualTo(3_000);
        store.KvTablesAnalyzed.Should().Be(1);

        // kv_entries has outgrown its statistics now (0 rows): the leader's next check analyzes it, in the background.
        await EventuallyAsync(async () => await LiveRowsAsync(url, "kv_entries") >= 3_000);
        store.KvStatisticsInterval = TimeSpan.Zero; // a check after every write
        await EventuallyAsync(async () =>
        {
            await kv.SetKvAsync(Acme, new KvWrite("stats:tick", "1", null), WriteDurability.Relaxed);
            return await ReltuplesAsync(url, "kv_entries") >= 3_000;
        });
        // The background check counts its ANALYZE once the statement has returned, a moment after the new statistics show.
        await EventuallyAsync(() => Task.FromResult(store.KvTablesAnalyzed >= 2));
        store.KvTablesAnalyzed.Should().Be(2);
        store.KvStatisticsInterval = TimeSpan.MaxValue;

        // Statistics that match the rows are left alone.
        (await store.RefreshKvStatisticsAsync()).Should().Be(0);
        (await kv.GetManyKvAsync(Acme, keys)).Should().OnlyContain(e => e != null && e.ValueJson == "2");
        (await store.ReadCountsAsync()).KvKeys.Should().Be(3_001);
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty();
    }

    /// <summary>
    /// Polls <paramref name="done"/> until it holds: PostgreSQL's statistics collector counts a session's rows when the
    /// session reports them (within a second or so of its commit), not at the commit.
    /// </summary>
    private static async Task EventuallyAsync(Func<Task<bool>> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await done())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the statistics should have been brought up to date within a minute");
            await Task.Delay(200);
        }
    }

    private static async Task<double> ReltuplesAsync(string url, string table)
    {
        await using var connection = await OpenAsync(url);
        await using var command = new NpgsqlCommand($"SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass", connection);
        return Convert.ToDouble(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The table's live rows as PostgreSQL's statistics collector counts them (what the store compares with reltuples).</summary>
    private static async Task<long> LiveRowsAsync(string url, string table)
    {
        await using var connection = await OpenAsync(url);
        await using var command = new NpgsqlCommand($"SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = '{table}'::regclass", connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(string url, string sql)
    {
        await using var connection = await OpenAsync(url);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<NpgsqlConnection> OpenAsync(string url)
    {
        var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
        await connection.OpenAsync();
        return connection;
    }
}
