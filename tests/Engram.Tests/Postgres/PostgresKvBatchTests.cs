using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// Key-value steps of many keys on PostgreSQL: their statements go to the database in batches, and the counts the
/// triggers keep are appended as deltas that readers add up and a fold moves into <c>row_counts</c>.
/// </summary>
public sealed class PostgresKvBatchTests
{
    private static readonly Caller Acme = new("acme", "test");
    private static readonly Caller Beta = new("beta", "test");

    [Fact]
    public async Task Counts_kept_as_deltas_add_up_and_fold_into_row_counts_once()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        store.CountFoldInterval = TimeSpan.MaxValue; // this test folds by hand
        IKeyValueStore kv = store;
        var keys = Enumerable.Range(0, 3_000).Select(i => $"count:{i}").ToArray();
        await kv.SetManyKvAsync(Acme, [.. keys.Select(k => new KvWrite(k, "1", null))], WriteDurability.Relaxed);
        await kv.SetManyKvAsync(Beta, [.. keys.Take(500).Select(k => new KvWrite(k, "1", null))], WriteDurability.Relaxed);
        await kv.TransactKvAsync(Acme, keys[..1_000], transaction =>
        {
            foreach (var key in keys[..1_000])
            {
                transaction.DeleteKvAsync(Acme, key, WriteDurability.Relaxed);
            }
            return 0;
        }, WriteDurability.Relaxed);

        (await store.ReadCountsAsync()).KvKeys.Should().Be(2_500);
        // One delta per inserted entry; the transaction's 1,000 deletes are one set-based statement, counted by its
        // statement trigger in one delta.
        (await ScalarAsync(url, "SELECT count(*) FROM row_count_deltas")).Should().Be(3_501);
        (await ScalarAsync(url, "SELECT count(*) FROM row_counts WHERE kind = 'kv'")).Should().Be(0, "nothing folded yet");

        // Two folds at once (two instances): the deltas move once, whichever fold takes them.
        var folds = await Task.WhenAll(store.FoldRowCountsAsync(), store.FoldRowCountsAsync());
        (folds.Sum() + await store.FoldRowCountsAsync()).Should().Be(3_501);
        (await ScalarAsync(url, "SELECT count(*) FROM row_count_deltas")).Should().Be(0);
        (await ScalarAsync(url, "SELECT n FROM row_counts WHERE tenant = 'acme' AND kind = 'kv'")).Should().Be(2_000);
        (await ScalarAsync(url, "SELECT n FROM row_counts WHERE tenant = 'beta' AND kind = 'kv'")).Should().Be(500);
        (await store.ReadCountsAsync()).KvKeys.Should().Be(2_500, "folding changes where the counts are, not what they say");

        // Changes after the fold count on top of it.
        await kv.DeleteKvAsync(Beta, keys[0], WriteDurability.Relaxed);
        await kv.SetKvAsync(Acme, new KvWrite("count:new", "1", null), WriteDurability.Relaxed);
        (await store.ReadCountsAsync()).KvKeys.Should().Be(2_500);
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty("the kept counts (folded and not) match the rows");
        (await store.FoldRowCountsAsync()).Should().Be(2);
        (await ScalarAsync(url, "SELECT n FROM row_counts WHERE tenant = 'beta' AND kind = 'kv'")).Should().Be(499);
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty();
    }

    [Fact]
    public async Task An_instance_that_writes_folds_the_deltas_by_itself()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        store.CountFoldInterval = TimeSpan.Zero; // after every write the queue runs
        IKeyValueStore kv = store;
        for (var i = 0; i < 20; i++)
        {
            await kv.SetKvAsync(Acme, new KvWrite($"auto:{i}", "1", null), WriteDurability.Relaxed);
        }
        for (var attempt = 0; attempt < 200 && await ScalarAsync(url, "SELECT count(*) FROM row_count_deltas") > 0; attempt++)
        {
            await kv.SetKvAsync(Acme, new KvWrite("auto:0", "2", null), WriteDurability.Relaxed); // an update: no new delta
            await Task.Delay(25);
        }
        (await ScalarAsync(url, "SELECT count(*) FROM row_count_deltas")).Should().Be(0, "the background folds moved every delta");
        (await ScalarAsync(url, "SELECT n FROM row_counts WHERE tenant = 'acme' AND kind = 'kv'")).Should().Be(20);
        (await store.ReadCountsAsync()).KvKeys.Should().Be(20);
    }

    /// <summary>
    /// SETs queued behind the log lock from two tenants, on the same key names, go into one group and its batches: each
    /// tenant's key keeps its own versions, value and history chain (each statement finds its key's head in SQL, after
    /// the writes before it in the batch).
    /// </summary>
    [Fact]
    public async Task A_group_of_two_tenants_writing_the_same_key_names_keeps_them_apart()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        IKeyValueStore kv = store;
        var writes = new List<Task<KvSetResult>>();
        await using (var holder = await OutsideLogLock.HoldAsync(url))
        {
            writes.Add(kv.SetKvAsync(Acme, new KvWrite("lead", "0", null), WriteDurability.Relaxed));
            await OutsideLogLock.WaitForWaiterAsync(url);
            for (var i = 0; i < 30; i++)
            {
                var caller = i % 3 == 0 ? Beta : Acme;
                writes.Add(kv.SetKvAsync(caller, new KvWrite($"shared:{i % 4}", $"\"{caller.Tenant}{i}\"", null), WriteDurability.Relaxed));
            }
            await holder.CommitAsync();
        }
        var results = await Task.WhenAll(writes);
        store.LargestLogGroup.Should().BeGreaterThan(10, "the queued SETs shared a transaction");
        // i % 4 picks the key, i % 3 the tenant: each tenant writes each of the four keys. A write's version counts the
        // writes of its own tenant's key before it.
        var versions = new Dictionary<string, long>();
        var last = new Dictionary<string, string>();
        for (var i = 0; i < 30; i++)
        {
            var slot = $"{(i % 3 == 0 ? "beta" : "acme")}/shared:{i % 4}";
            versions[slot] = versions.GetValueOrDefault(slot) + 1;
            last[slot] = $"\"{slot.Split('/')[0]}{i}\"";
            results[i + 1].Version.Should().Be(versions[slot], $"write {i} is write {versions[slot]} of {slot}");
        }
        versions.Should().HaveCount(8, "both tenants wrote all four key names");
        foreach (var (slot, value) in last)
        {
            var caller = slot.StartsWith("beta", StringComparison.Ordinal) ? Beta : Acme;
            var key = slot.Split('/')[1];
            var entry = await kv.GetKvAsync(caller, key);
            entry!.ValueJson.Should().Be(value);
            entry.Version.Should().Be(versions[slot]);
            (await kv.GetKvHistoryAsync(caller, key, 20, null, 100)).Items.Select(h => h.Version)
                .Should().Equal(Enumerable.Range(1, (int)versions[slot]).Select(v => (long)v));
        }
        results.Select(r => r.Seq).Should().OnlyHaveUniqueItems().And.BeInAscendingOrder("the group ran them in queue order");
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty();
    }

    private static async Task<long> ScalarAsync(string url, string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
