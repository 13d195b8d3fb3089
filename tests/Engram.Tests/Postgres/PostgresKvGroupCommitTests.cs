using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// Key-value SETs queued behind one another on a PostgreSQL instance share a transaction (group commit), and that changes
/// nothing a caller can see: every write keeps its order against the others (a SET, an INCR and a SET of one key), its
/// own outcome (a refused nx, a statement error), its version, its history row and its change-log entry.
/// </summary>
public sealed class PostgresKvGroupCommitTests
{
    private static readonly Caller Acme = new("acme", "test");

    [Fact]
    public async Task Queued_sets_share_one_transaction_and_keep_their_order_and_their_own_outcomes()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        IKeyValueStore kv = store;
        await Set(kv, "taken", "\"first\"");
        var groupsBefore = store.LogGroupsRun;

        // Phase 1: the database's log lock is held elsewhere, so the first SET waits on it and the rest queue behind it.
        var writes = new List<Task<KvSetResult>>();
        Task<long> increment;
        Task<KvSetResult> refused;
        Task<IReadOnlyList<KvSetResult>> many;
        await using (var holder = await OutsideLogLock.HoldAsync(url))
        {
            writes.Add(Set(kv, "lead", "0"));
            await OutsideLogLock.WaitForWaiterAsync(url);
            for (var i = 0; i < 20; i++)
            {
                writes.Add(Set(kv, $"k{i % 10}", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
            writes.Add(Set(kv, "ordered", "1"));
            increment = kv.IncrementKvAsync(Acme, "ordered", 1, null, WriteDurability.Relaxed);
            writes.Add(Set(kv, "ordered", "10"));
            refused = Set(kv, "taken", "\"second\"", KvCondition.IfMissing);
            many = kv.SetManyKvAsync(Acme, [new KvWrite("m1", "1", null), new KvWrite("m2", "2", null), new KvWrite("k0", "\"last\"", null)], WriteDurability.Relaxed);
            await holder.CommitAsync();
        }
        var results = await Task.WhenAll(writes);
        (await increment).Should().Be(2, "the INCR ran after the SET before it and before the SET after it");
        await ((Func<Task>)(() => refused)).Should().ThrowAsync<ConflictException>();
        var manyResults = await many;
        manyResults.Select(r => r.Version).Should().Equal(1, 1, 3);

        store.LargestLogGroup.Should().BeGreaterThanOrEqualTo(20, "the 20 SETs queued behind the lock went in one transaction");
        (store.LogGroupsRun - groupsBefore).Should().BeLessThan(8);
        results.Skip(1).Take(20).Select(r => r.Version).Should().Equal(Enumerable.Range(0, 20).Select(i => (long)(i / 10) + 1));
        (await kv.GetKvAsync(Acme, "ordered"))!.ValueJson.Should().Be("10");
        (await kv.GetKvAsync(Acme, "taken"))!.ValueJson.Should().Be("\"first\"");
        (await kv.GetKvAsync(Acme, "k0"))!.ValueJson.Should().Be("\"last\"");
        (await kv.GetKvAsync(Acme, "k9"))!.ValueJson.Should().Be("19");
        (await kv.GetKvHistoryAsync(Acme, "k0", 10, null, 100)).Items.Should().HaveCount(3);
        var seqs = results.Select(r => r.Seq).Concat(manyResults.Select(r => r.Seq)).ToList();
        seqs.Should().OnlyHaveUniqueItems();
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty("the change log has no gap");

        // Phase 2: a SET that fails in PostgreSQL (a NUL character in text) aborts the group's transaction; the others are
        // written alone, each with its outcome, and the failed one leaves nothing.
        writes.Clear();
        await using (var holder = await OutsideLogLock.HoldAsync(url))
        {
            writes.Add(Set(kv, "lead", "1"));
            await OutsideLogLock.WaitForWaiterAsync(url);
            for (var i = 0; i < 6; i++)
            {
                writes.Add(i == 3
                    ? Set(kv, "bad", "\"a\0b\"")
                    : Set(kv, $"p2:{i}", "1"));
            }
            await holder.CommitAsync();
        }
        await ((Func<Task>)(() => writes[4])).Should().ThrowAsync<StoreException>();
        foreach (var i in new[] { 1, 2, 3, 5, 6 })
        {
            (await writes[i]).Version.Should().Be(1);
        }
        (await kv.GetKvAsync(Acme, "bad")).Should().BeNull();
        (await kv.GetKvAsync(Acme, "p2:5"))!.ValueJson.Should().Be("1");
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty();
    }

    [Fact]
    public async Task Queued_single_key_changes_share_the_group_with_sets_in_their_order()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        IKeyValueStore kv = store;
        for (var i = 0; i < 10; i++)
        {
            await Set(kv, $"d{i}", "1");
        }
        await Set(kv, "text", "\"abc\"");
        await Set(kv, "e", "1");
        var groupsBefore = store.LogGroupsRun;
        var deletes = new List<Task<bool>>();
        var increments = new List<Task<long>>();
        Task<KvSetResult> recreated;
        Task<bool> deletedAgain;
        Task<long>? refused = null;
        Task<bool> expired, expiredMissing;
        Task<KvUpdated> taken;
        await using (var holder = await OutsideLogLock.HoldAsync(url))
        {
            var lead = Set(kv, "lead", "0");
            await OutsideLogLock.WaitForWaiterAsync(url);
            for (var i = 0; i < 10; i++)
            {
                deletes.Add(kv.DeleteKvAsync(Acme, $"d{i}", WriteDurability.Relaxed));
            }
            deletes.Add(kv.DeleteKvAsync(Acme, "d0", WriteDurability.Relaxed)); // deleted just before, in the same group
            deletes.Add(kv.DeleteKvAsync(Acme, "never", WriteDurability.Relaxed));
            recreated = Set(kv, "d1", "2");
            deletedAgain = kv.DeleteKvAsync(Acme, "d1", WriteDurability.Full); // a full-durability write makes the group's commit full
            for (var i = 0; i < 30; i++)
            {
                increments.Add(kv.IncrementKvAsync(Acme, "n", 1, null, WriteDurability.Relaxed));
                if (i == 10)
                {
                    refused = kv.IncrementKvAsync(Acme, "text", 1, null, WriteDurability.Relaxed); // refused alone: not an integer
                }
            }
            expired = kv.ExpireKvAsync(Acme, "e", long.MaxValue / 2, WriteDurability.Relaxed);
            expiredMissing = kv.ExpireKvAsync(Acme, "never", long.MaxValue / 2, WriteDurability.Relaxed);
            taken = kv.UpdateKvAsync(Acme, "n", (live, _) => live is null ? KvChange.Keep : KvChange.Remove, WriteDurability.Relaxed); // GETDEL
            await holder.CommitAsync();
            await lead;
        }
        (await Task.WhenAll(increments)).Should().Equal(Enumerable.Range(1, 30).Select(i => (long)i), "each INCR saw the ones queued before it");
        await ((Func<Task>)(() => refused!)).Should().ThrowAsync<ConflictException>();
        (await kv.GetKvAsync(Acme, "text"))!.ValueJson.Should().Be("\"abc\"");
        (await expired).Should().BeTrue();
        (await kv.GetKvAsync(Acme, "e"))!.ExpiresAtMs.Should().Be(long.MaxValue / 2);
        (await expiredMissing).Should().BeFalse();
        var getdel = await taken;
        getdel.Changed.Should().BeTrue();
        getdel.Previous!.ValueJson.Should().Be("30", "the GETDEL came after the 30 INCRs");
        (await kv.GetKvAsync(Acme, "n")).Should().BeNull();
        (await Task.WhenAll(deletes)).Should().Equal([.. Enumerable.Repeat(true, 10), false, false]);
        (await recreated).Created.Should().BeTrue("the key was deleted before it in the same group");
        (await deletedAgain).Should().BeTrue();
        (store.LogGroupsRun - groupsBefore).Should().BeLessThan(5, "the queued deletes went in groups, not one transaction each");
        store.LargestLogGroup.Should().BeGreaterThanOrEqualTo(40);

        (await kv.GetManyKvAsync(Acme, [.. Enumerable.Range(0, 10).Select(i => $"d{i}")])).Should().OnlyContain(e => e == null);
        var history = (await kv.GetKvHistoryAsync(Acme, "d1", 10, null, 100)).Items;
        // The history goes on through the delete in the group (a key made anew starts at version 1 again).
        history.Select(h => (h.Event, h.Version)).Should().Equal((KvEvents.Created, 1L), (KvEvents.Deleted, 1L), (KvEvents.Created, 1L), (KvEvents.Deleted, 1L));
        history.Select(h => h.Seq).Should().BeInAscendingOrder();
        (await store.ReadCountsAsync()).KvKeys.Should().Be(3, "the lead, text and e are left");
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty("the change log has no gap and the counts match");
    }

    /// <summary>
    /// An MSET and a transaction of thousands of keys (past the 1,000 keys one state read takes) log each change once, with
    /// seqs that follow one another and a log head moved to the last of them; a key written twice in one step chains its
    /// history through the first write, whose state the step keeps without reading it back.
    /// </summary>
    [Fact]
    public async Task Steps_of_thousands_of_keys_log_every_change_once_in_order()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var store = PostgresMemoryStore.Open(url);
        IKeyValueStore kv = store;
        const int count = 2_500;
        var keys = Enumerable.Range(0, count).Select(i => $"big:{i}").ToArray();
        var headBefore = await HeadAsync(url);

        // An MSET naming big:0 twice: the second write sees the first.
        var writes = keys.Select(k => new KvWrite(k, "1", null)).Append(new KvWrite("big:0", "2", null)).ToArray();
        var set = await kv.SetManyKvAsync(Acme, writes, WriteDurability.Relaxed);
        set.Select(r => r.Seq).Should().Equal(Enumerable.Range(1, count + 1).Select(i => headBefore + i), "one seq per write, in order, none skipped");
        set[^1].Version.Should().Be(2);
        set[^1].Created.Should().BeFalse();
        (await HeadAsync(url)).Should().Be(headBefore + count + 1);

        // One transaction: even keys set twice, odd keys deleted, big:0 (now at version 2) given an expiry as well.
        var headAfterSet = headBefore + count + 1;
        var expiry = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds();
        var changed = await kv.TransactKvAsync(Acme, keys, transaction =>
        {
            for (var i = 0; i < count; i++)
            {
                if (i % 2 == 0)
                {
                    transaction.SetKvAsync(Acme, new KvWrite(keys[i], "3", null), WriteDurability.Relaxed);
                    transaction.SetKvAsync(Acme, new KvWrite(keys[i], "4", null), WriteDurability.Relaxed);
                }
                else
                {
                    transaction.DeleteKvAsync(Acme, keys[i], WriteDurability.Relaxed);
                }
            }
            transaction.ExpireKvAsync(Acme, "big:0", expiry, WriteDurability.Relaxed);
            return transaction.Changes.Count;
        }, WriteDurability.Relaxed);
        changed.Should().Be(count / 2 * 3 + 1);
        (await HeadAsync(url)).Should().Be(headAfterSet + changed, "the head moved once, to the last of the step's seqs");

        var zero = await kv.GetKvAsync(Acme, "big:0");
        zero!.ValueJson.Should().Be("4");
        zero.Version.Should().Be(5, "created, set again by the MSET, twice by the transaction, then its expiry");
        zero.ExpiresAtMs.Should().Be(expiry);
        (await kv.GetKvAsync(Acme, "big:1")).Should().BeNull();
        (await kv.GetKvAsync(Acme, $"big:{count - 2}"))!.Version.Should().Be(3);
        var history = (await kv.GetKvHistoryAsync(Acme, "big:0", 10, null, 1000)).Items;
        history.Select(h => (h.Event, h.Version)).Should().Equal(
            (KvEvents.Created, 1L), (KvEvents.Updated, 2L), (KvEvents.Updated, 3L), (KvEvents.Updated, 4L), (KvEvents.TtlChanged, 5L));
        (await kv.GetKvHistoryAsync(Acme, "big:1", 10, null, 1000)).Items.Select(h => h.Event).Should().Equal(KvEvents.Created, KvEvents.Deleted);
        history.Select(h => h.Seq).Should().BeInAscendingOrder();
        (await store.CheckIntegrityAsync()).Problems.Should().BeEmpty("the change log has no gap");
    }

    private static async Task<long> HeadAsync(string url)
    {
        await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT seq FROM log_head", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static Task<KvSetResult> Set(IKeyValueStore kv, string key, string json, KvCondition condition = KvCondition.Always) =>
        kv.SetKvAsync(Acme, new KvWrite(key, json, null, condition), WriteDurability.Relaxed);
}
