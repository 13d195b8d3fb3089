using System.Diagnostics;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>
/// Relaxed SETs on SQLite are acknowledged through the key-value journal (SqliteKvJournal): the caller's thread publishes
/// the new state and appends a record to a file, and the writer applies the records later. These tests hold it to what a
/// SET through the writer gives: the value reads back at once, every SET has its history row in order with the versions
/// the writer gives, operations that read the tables see the journaled keys, writes through the writer are ordered with
/// the journaled ones, and records a crash left unapplied are applied by the next opener.
/// </summary>
public sealed class KvJournalTests : KvJournalTestBase
{
    [Fact]
    public async Task Relaxed_sets_are_journaled_read_back_at_once_and_get_their_history_in_order()
    {
        await using var store = SqliteMemoryStore.Open(Folder("a"));
        var journal = Hold(store);
        var kv = Relaxed(store);

        var first = await kv.SetAsync(Acme, "agent:1", Json("1"), null);
        var second = await kv.SetAsync(Acme, "agent:1", Json("\"two\""), null);
        var third = await kv.SetAsync(Acme, "agent:1", Json("{\"n\":3}"), null);

        journal.Appended.Should().Be(3, "a key never written is journaled from its first SET: the key filter says it has no state");
        journal.Pending.Should().Be(3, "the writer has not applied them");
        (first.Created, first.Version, second.Created, second.Version, third.Version).Should().Be((true, 1L, false, 2L, 3L));
        (await kv.GetAsync(Acme, "agent:1")).Value.GetRawText().Should().Be("{\"n\":3}");

        var history = await kv.GetHistoryAsync(Acme, "agent:1");
        journal.Pending.Should().Be(0, "reading the history applies what waits");
        history.Items.Select(h => (h.Event, h.Version, h.Value!.Value.GetRawText()))
            .Should().Equal((KvEvents.Created, 1L, "1"), (KvEvents.Updated, 2L, "\"two\""), (KvEvents.Updated, 3L, "{\"n\":3}"));
        history.Items.Select(h => h.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task A_run_of_sets_of_one_key_applied_together_gives_each_its_history_and_keeps_the_last_state_across_a_reopen()
    {
        // The writer applies consecutive records of one key as a run and stages only the last state: the states between
        // must still be computed one by one (an expiry inside the run makes the next SET a creation).
        var folder = Folder("run");
        long createdAnew;
        await using (var store = SqliteMemoryStore.Open(folder))
        {
            var journal = Hold(store);
            var kv = Relaxed(store);
            var expires = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 60;
            await kv.SetJsonAsync(Acme, "run:a", "1", expires, KvCondition.Always);
            await kv.SetJsonAsync(Acme, "run:a", "2", expires, KvCondition.Always);
            await Task.Delay(120);
            await kv.SetJsonAsync(Acme, "run:a", "3", null, KvCondition.Always);
            createdAnew = (await store.GetKvAsync(Acme, "run:a"))!.CreatedAtMs;
            await kv.SetJsonAsync(Acme, "run:b", "\"b\"", null, KvCondition.Always);
            await kv.SetJsonAsync(Acme, "run:a", "4", null, KvCondition.Always);
            await kv.SetJsonAsync(Acme, "run:a", "5", null, KvCondition.Always);
            (journal.Appended, journal.Pending).Should().Be((6L, 6));

            var history = await kv.GetHistoryAsync(Acme, "run:a");
            journal.Pending.Should().Be(0);
            history.Items.Select(h => (h.Event, h.Version, h.Value!.Value.GetRawText())).Should().Equal(
                (KvEvents.Created, 1L, "1"), (KvEvents.Updated, 2L, "2"), (KvEvents.Created, 3L, "3"), (KvEvents.Updated, 4L, "4"), (KvEvents.Updated, 5L, "5"));
            var applied = (await store.GetKvAsync(Acme, "run:a"))!;
            (applied.ValueJson, applied.Version, applied.CreatedAtMs, applied.ExpiresAtMs).Should().Be(("5", 5L, createdAnew, (long?)null));
        }
        await using (var reopened = SqliteMemoryStore.Open(folder))
        {
            var a = (await reopened.GetKvAsync(Acme, "run:a"))!;
            (a.ValueJson, a.Version, a.CreatedAtMs).Should().Be(("5", 5L, createdAnew), "the last state of the run reached the tables");
            (await reopened.GetKvAsync(Acme, "run:b"))!.Version.Should().Be(1);
            (await Relaxed(reopened).GetHistoryAsync(Acme, "run:a")).Items.Should().HaveCount(5);
        }
    }

    [Fact]
    public async Task An_idle_writer_applies_a_lone_record_at_its_deadline_and_a_full_batch_at_once()
    {
        await using var store = SqliteMemoryStore.Open(Folder("idle"));
        var journal = store.KvJournal!;
        journal.LingerMs = 20;
        journal.ApplyBatch = 8;
        var kv = Relaxed(store);
        // Nothing reaches the writer but the journal: it sleeps, and only the deadline the journal gives it can wake it.
        await kv.SetAsync(Acme, "lone", Json("0"), null);
        await kv.SetAsync(Acme, "lone", Json("1"), null);
        journal.Appended.Should().Be(2);
        await WaitUntilAsync(() => journal.Pending == 0, "the writer applies a lone record once its linger has passed");

        journal.LingerMs = Timeout.Infinite; // only a full batch can wake it now
        for (var i = 2; i < 2 + 7; i++)
        {
            await kv.SetAsync(Acme, "lone", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), null);
        }
        await Task.Delay(100);
        journal.Pending.Should().Be(7, "short of a batch and with no deadline, the records wait");
        await kv.SetAsync(Acme, "lone", Json("9"), null);
        await WaitUntilAsync(() => journal.Pending == 0, "the eighth record fills the batch and wakes the writer");
        (await kv.GetHistoryAsync(Acme, "lone")).Items.Select(h => h.Version).Should().Equal(Enumerable.Range(1, 10).Select(v => (long)v));
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string because)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(5);
        }
        condition().Should().BeTrue(because);
    }

    [Fact]
    public async Task A_full_journal_sends_the_set_to_the_writer_which_applies_everything_and_starts_the_file_again()
    {
        var folder = Folder("full");
        await using var store = SqliteMemoryStore.Open(folder);
        var journal = Hold(store);
        var kv = Relaxed(store);
        var file = new FileInfo(Path.Combine(folder, "engram.db" + SqliteKvJournal.Suffix));
        file.Length.Should().Be(SqliteKvJournal.CapacityBytes, "the file is reserved at its full size when it opens");
        var big = Json("\"" + new string('x', 900_000) + "\"");
        await kv.SetAsync(Acme, "big", Json("0"), null); // through the writer: loads the key's state

        var versions = new List<long> { 1 };
        var appended = new List<long>();
        for (var i = 0; i < 24; i++)
        {
            versions.Add((await kv.SetAsync(Acme, "big", big, null)).Version);
            appended.Add(journal.Appended);
        }

        // Records fit until the next could pass the reserved size; that SET went through the writer, whose group applied
        // every waiting record first, and the records after it start at the file's beginning again.
        var first = Enumerable.Range(1, appended.Count - 1).First(i => appended[i] == appended[i - 1]);
        first.Should().BeGreaterThan(5, "several 900 KB records fit in the reserved size first");
        appended[first].Should().Be(appended[first - 1], "that SET was not journaled");
        appended[first + 1].Should().Be(appended[first] + 1, "the next one is, at the file's start");
        versions.Should().Equal(Enumerable.Range(1, 25).Select(v => (long)v), "one order of versions across both ways");
        new FileInfo(file.FullName).Length.Should().Be(SqliteKvJournal.CapacityBytes, "the file never grows past its reservation");
        (await KvHistoryTests.AllHistoryAsync(kv, Acme, "big", 100)).Select(h => h.Version).Should().Equal(Enumerable.Range(1, 25).Select(v => (long)v));
    }

    [Fact]
    public async Task Conditional_sets_go_through_the_writer_and_are_ordered_after_the_journaled_ones()
    {
        await using var store = SqliteMemoryStore.Open(Folder("b"));
        var journal = Hold(store);
        var kv = Relaxed(store);

        await kv.SetAsync(Acme, "k", Json("1"), null);
        await kv.SetAsync(Acme, "k", Json("2"), null);
        // NX on a key that exists (only as a journaled SET so far): the writer must see it.
        var refused = async () => await kv.SetAsync(Acme, "k", Json("3"), null, nx: true);
        await refused.Should().ThrowAsync<ConflictException>();
        (await kv.DeleteKeyAsync(Acme, "k")).Should().BeTrue();
        await kv.SetAsync(Acme, "k", Json("4"), null);
        var xx = await kv.SetAsync(Acme, "k", Json("5"), null, xx: true);
        await kv.SetAsync(Acme, "k", Json("6"), null);
        (await kv.IncrementAsync(Acme, "n", 5)).Should().Be(5);

        journal.Appended.Should().Be(6, "the unconditional SETs of k (1, 2, 4, 6), the DEL and the INCR of n are journaled; NX and XX are not");
        journal.Deletes.Should().Be(1);
        xx.Version.Should().Be(2, "XX sees the journaled SET of 4 that recreated the key");
        (await kv.GetAsync(Acme, "k")).Value.GetRawText().Should().Be("6");
        var history = await kv.GetHistoryAsync(Acme, "k");
        history.Items.Select(h => (h.Event, h.Version, h.Value?.GetRawText()))
            .Should().Equal((KvEvents.Created, 1L, "1"), (KvEvents.Updated, 2L, "2"), (KvEvents.Deleted, 2L, null), (KvEvents.Created, 1L, "4"),
                (KvEvents.Updated, 2L, "5"), (KvEvents.Updated, 3L, "6"));
    }

    [Fact]
    public async Task A_set_made_while_the_same_callers_earlier_write_waits_for_the_writer_does_not_overtake_it()
    {
        // A RESP pipeline hands its writes over without waiting for each: SET XX (through the writer), then a plain SET and
        // an INCR of the same key, which say that they follow a write under way.
        await using var store = SqliteMemoryStore.Open(Folder("order"));
        var journal = Hold(store);
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "n", Json("1"), null);
        await kv.SetAsync(Acme, "n", Json("5"), null);
        journal.Appended.Should().Be(2);

        // The test holds the state lock, so the writer cannot finish the SET XX before the others are made (this thread may
        // take the lock again, as a journaled SET does).
        Task<KvWritten> conditional;
        Task<KvSetResult> set;
        Task<long> increment;
        lock (store.KvStateLock)
        {
            conditional = kv.SetAsync(Acme, "n", Json("6"), null, xx: true);
            set = kv.SetPreparedAsync(kv.PrepareSet(Acme, "n", "100", null), afterWritesUnderWay: true);
            increment = kv.IncrementAsync(Acme, "n", 1, textIntegers: false, afterWritesUnderWay: true);
        }
        (await conditional).Version.Should().Be(3, "the SET XX comes after the journaled SET of 5, which its group applies first");
        (await set).Version.Should().Be(4);
        (await increment).Should().Be(101);
        journal.Appended.Should().Be(2, "the SET and the INCR queued behind the SET XX instead of being journaled past it");
        (await kv.GetAsync(Acme, "n")).Value.GetRawText().Should().Be("101");
        (await kv.GetHistoryAsync(Acme, "n")).Items.Select(h => (h.Event, h.Value!.Value.GetRawText()))
            .Should().Equal((KvEvents.Created, "1"), (KvEvents.Updated, "5"), (KvEvents.Updated, "6"), (KvEvents.Updated, "100"), (KvEvents.Incremented, "101"));
    }

    [Fact]
    public async Task A_set_of_another_caller_is_journaled_while_a_write_waits_for_the_writer_and_takes_effect_first()
    {
        // Two clients: one's SET XX is queued (not answered), the other's SET and INCR come meanwhile. Neither was answered
        // before the other began, so either order is right; the SET and INCR do not wait behind the writer's queue.
        await using var store = SqliteMemoryStore.Open(Folder("others"));
        var journal = Hold(store);
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "n", Json("1"), null);

        Task<KvWritten> conditional;
        Task<KvWritten> set;
        Task<long> increment;
        lock (store.KvStateLock)
        {
            conditional = kv.SetAsync(Acme, "n", Json("7"), null, xx: true);
            set = kv.SetAsync(Acme, "n", Json("100"), null);
            increment = kv.IncrementAsync(Acme, "n");
            set.IsCompleted.Should().BeTrue("a journaled SET is answered at once, while the writer cannot run");
            increment.IsCompleted.Should().BeTrue("so is a journaled INCR");
        }
        (await set).Version.Should().Be(2);
        (await increment).Should().Be(101);
        journal.Appended.Should().Be(3);
        (await conditional).Version.Should().Be(4, "the SET XX's group applies the journaled SET and INCR before it");
        (await kv.GetHistoryAsync(Acme, "n")).Items.Select(h => h.Value!.Value.GetRawText()).Should().Equal("1", "100", "101", "7");
    }

    [Fact]
    public async Task Relaxed_increments_are_journaled_keep_or_give_the_ttl_refuse_non_integers_and_survive_a_crash_as_incremented()
    {
        var live = Folder("incr");
        var image = Folder("incr-image");
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var kv = new KvService(store, new KvOptions { Durability = WriteDurability.Relaxed, DefaultTtlSeconds = 3600 }, TimeProvider.System);
            await kv.SetAsync(Acme, "hits", Json("10"), 60);
            await kv.SetAsync(Acme, "name", Json("\"ten\""), null);
            await kv.GetHistoryAsync(Acme, "hits"); // applied: in the tables
            var journal = Hold(store);
            var before = journal.Appended;

            (await kv.IncrementAsync(Acme, "hits")).Should().Be(11);
            (await kv.IncrementAsync(Acme, "hits", 5)).Should().Be(16);
            (await kv.IncrementAsync(Acme, "hits", -20)).Should().Be(-4);
            (await kv.IncrementAsync(Acme, "fresh", 3)).Should().Be(3, "a key never written starts at 0");
            (await kv.IncrementAsync(Acme, "text", 2, textIntegers: true)).Should().Be(2);
            var notInteger = async () => await kv.IncrementAsync(Acme, "name");
            await notInteger.Should().ThrowAsync<ConflictException>();
            await kv.SetAsync(Acme, "max", Json(long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture)), null);
            var overflow = async () => await kv.IncrementAsync(Acme, "max");
            await overflow.Should().ThrowAsync<ConflictException>();

            journal.Appended.Should().Be(before + 6, "five increments and the SET of max; the refused ones wrote nothing");
            journal.Pending.Should().Be(6);
            (await kv.GetAsync(Acme, "hits")).TtlSeconds.Should().BeInRange(1, 60, "an existing key keeps its TTL");
            (await kv.GetAsync(Acme, "fresh")).TtlSeconds.Should().BeInRange(3500, 3600, "a new key gets the default TTL");

            await CopyCrashImageAsync(live, image);
            using var copied = File.OpenHandle(Path.Combine(image, "engram.db-kvjournal"));
            SqliteKvJournal.Read(copied, 0).Records.Count(r => r.Incremented).Should().Be(5);
        }

        await using var reopened = SqliteMemoryStore.Open(image);
        var after = new KvService(reopened, new KvOptions { Durability = WriteDurability.Relaxed, DefaultTtlSeconds = 3600 }, TimeProvider.System);
        reopened.KvJournal!.Pending.Should().Be(0, "the opener applied the records before serving");
        var hits = await after.GetAsync(Acme, "hits");
        hits.Value.GetRawText().Should().Be("-4");
        hits.TtlSeconds.Should().BeInRange(1, 60);
        (await after.GetAsync(Acme, "fresh")).TtlSeconds.Should().BeInRange(3500, 3600);
        (await after.GetAsync(Acme, "name")).Value.GetRawText().Should().Be("\"ten\"");
        (await after.GetHistoryAsync(Acme, "hits")).Items.Select(h => (h.Event, h.Version, h.Value!.Value.GetRawText()))
            .Should().Equal((KvEvents.Created, 1L, "10"), (KvEvents.Incremented, 2L, "11"), (KvEvents.Incremented, 3L, "16"), (KvEvents.Incremented, 4L, "-4"));
        (await after.GetHistoryAsync(Acme, "fresh")).Items.Select(h => (h.Event, h.Version)).Should().Equal((KvEvents.Incremented, 1L));
        (await after.IncrementAsync(Acme, "text", 1, textIntegers: true)).Should().Be(3);
    }

    [Fact]
    public async Task Increments_from_sixteen_callers_beside_writes_through_the_writer_lose_none_and_leave_one_history()
    {
        await using var store = SqliteMemoryStore.Open(Folder("many"));
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "counter", Json("0"), null);
        var before = store.KvJournal!.Appended;
        var workers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 250; i++)
            {
                await kv.IncrementAsync(Acme, "counter");
                if (w == 0 && i % 25 == 0)
                {
                    // Writes through the writer between them: an expiry change and a conditional SET of another key.
                    await kv.ExpireAsync(Acme, "counter", 600);
                    await kv.SetAsync(Acme, "other", Json("1"), null, nx: i == 0);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        (await kv.GetAsync(Acme, "counter")).Value.GetRawText().Should().Be("4000");
        store.KvJournal.Appended.Should().BeGreaterThan(before, "increments of a key in memory are journaled");
        var history = await KvHistoryTests.AllHistoryAsync(kv, Acme, "counter", 1000);
        var increments = history.Where(h => h.Event == KvEvents.Incremented).ToList();
        increments.Select(h => h.Value!.Value.GetInt64()).Should().Equal(Enumerable.Range(1, 4000).Select(i => (long)i), "each increment once, in order");
        history.Select(h => h.Version).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        history.Select(h => h.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task A_listing_sees_keys_that_only_the_journal_holds_so_far()
    {
        await using var store = SqliteMemoryStore.Open(Folder("c"));
        var journal = Hold(store);
        var kv = Relaxed(store);
        var keys = Enumerable.Range(0, 20).Select(i => $"swarm:{i:D2}").ToList();
        // The keys are missing (known without a read: the key filter), and the SETs that create them are journaled.
        (await kv.GetManyAsync(Acme, [.. keys])).Should().OnlyContain(l => !l.Found);
        for (var i = 0; i < keys.Count; i++)
        {
            await kv.SetAsync(Acme, keys[i], Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), null);
        }
        journal.Pending.Should().Be(20);

        var page = await kv.ListAsync(Acme, "swarm:*", 100, null);
        page.Items.Select(i => i.Key).Should().Equal(keys);
        journal.Pending.Should().Be(0);
    }

    [Fact]
    public async Task Concurrent_journaled_sets_and_writes_through_the_writer_leave_one_consistent_history_per_key()
    {
        await using var store = SqliteMemoryStore.Open(Folder("d"));
        var journal = store.KvJournal!;
        journal.LingerMs = 1;
        journal.ApplyBatch = 16;
        var kv = Relaxed(store);
        var keys = Enumerable.Range(0, 6).Select(i => $"hot:{i}").ToArray();
        var changes = new int[keys.Length];
        var plainSets = 0;
        var tasks = Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
        {
            var random = new Random(t);
            for (var n = 0; n < 400; n++)
            {
                var k = random.Next(keys.Length);
                switch (random.Next(10))
                {
                    case 0:
                        if (await kv.DeleteKeyAsync(Acme, keys[k]))
                        {
                            Interlocked.Increment(ref changes[k]);
                        }
                        break;
                    case 1:
                        try
                        {
                            await kv.SetAsync(Acme, keys[k], Json($"\"nx{t}-{n}\""), null, nx: true);
                            Interlocked.Increment(ref changes[k]);
                        }
                        catch (ConflictException)
                        {
                        }
                        break;
                    default:
                        await kv.SetAsync(Acme, keys[k], Json($"\"t{t}-{n}\""), null);
                        Interlocked.Increment(ref changes[k]);
                        Interlocked.Increment(ref plainSets);
                        break;
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        // Plain SETs (and DELs) were journaled, except those that came while an NX's group ran (on a busy machine, many:
        // 403 of 1,277 once), between writes through the writer.
        (journal.Appended - journal.Deletes).Should().BeGreaterThan(10).And.BeLessThanOrEqualTo(plainSets);

        for (var k = 0; k < keys.Length; k++)
        {
            var history = await KvHistoryTests.AllHistoryAsync(kv, Acme, keys[k], 100);
            history.Should().HaveCount(changes[k], $"every acknowledged change of {keys[k]} has one history row");
            history.Select(h => h.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
            for (var i = 1; i < history.Count; i++)
            {
                var (before, after) = (history[i - 1], history[i]);
                var expected = after.Event == KvEvents.Deleted ? before.Version
                    : before.Event == KvEvents.Deleted ? 1
                    : before.Version + 1;
                after.Version.Should().Be(expected, $"{keys[k]}: {before.Event} v{before.Version} then {after.Event}");
            }
            var last = history[^1];
            var exists = await kv.GetManyAsync(Acme, [keys[k]]);
            if (last.Event == KvEvents.Deleted)
            {
                exists[0].Found.Should().BeFalse();
            }
            else
            {
                exists[0].Value!.Value.GetRawText().Should().Be(last.Value!.Value.GetRawText(), "the key holds its last history row's value");
            }
        }
    }

    [Fact]
    public async Task Records_a_crash_left_unapplied_are_applied_by_the_next_opener_and_a_torn_record_is_ignored()
    {
        var live = Folder("live");
        var image = Folder("image");
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "before", Json("0"), null);
            await kv.SetAsync(Acme, "k1", Json("\"a\""), 60);
            await kv.GetManyAsync(Acme, ["k2"]); // missing, and known to be
            await kv.GetHistoryAsync(Acme, "before"); // applied: in the tables
            var journal = Hold(store);
            await kv.SetAsync(Acme, "k1", Json("\"b\""), 60);
            await kv.SetAsync(Acme, "k2", Json("\"c\""), null);
            await kv.SetAsync(Acme, "before", Json("1"), null);
            journal.Pending.Should().Be(3);

            // What a kill -9 leaves (CopyCrashImageAsync), plus the start of a record whose write the crash cut short.
            await CopyCrashImageAsync(live, image);
            // The journal is reserved at its full size (zeros after the records): the torn record goes right after the last one.
            using (var copied = File.OpenHandle(Path.Combine(image, "engram.db-kvjournal"), FileMode.Open, FileAccess.ReadWrite))
            {
                var scan = SqliteKvJournal.Read(copied, 0);
                scan.Records.Should().HaveCount(3, "the three waiting SETs (the first SET of each key went through the writer)");
                RandomAccess.Write(copied, "\u0040\u0000\u0000\u0000torn"u8, scan.ValidBytes);
            }
        }

        await using (var reopened = SqliteMemoryStore.Open(image))
        {
            var kv = Relaxed(reopened);
            reopened.KvJournal!.Pending.Should().Be(0, "the opener applied the records before serving");
            var k1 = await kv.GetAsync(Acme, "k1");
            k1.Value.GetRawText().Should().Be("\"b\"");
            k1.TtlSeconds.Should().BeInRange(1, 60, "the expiry travels with the record");
            (await kv.GetAsync(Acme, "k2")).Value.GetRawText().Should().Be("\"c\"");
            (await kv.GetAsync(Acme, "before")).Value.GetRawText().Should().Be("1");
            (await kv.GetHistoryAsync(Acme, "k1")).Items.Select(h => (h.Version, h.Value!.Value.GetRawText())).Should().Equal((1L, "\"a\""), (2L, "\"b\""));
            (await kv.GetHistoryAsync(Acme, "before")).Items.Select(h => h.Version).Should().Equal(1, 2);

            // New SETs go on from there, and a second open applies nothing twice.
            await kv.SetAsync(Acme, "k1", Json("\"d\""), null);
        }
        await using (var again = SqliteMemoryStore.Open(image))
        {
            var kv = Relaxed(again);
            (await kv.GetHistoryAsync(Acme, "k1")).Items.Select(h => h.Version).Should().Equal(1, 2, 3);
        }
        File.Exists(Path.Combine(image, "engram.db-kvjournal")).Should().BeFalse("a store closed with everything applied leaves no journal");
    }

    [Fact]
    public async Task A_key_another_process_created_is_read_and_written_over_though_the_key_filter_did_not_hold_it()
    {
        var folder = Folder("filter");
        await using var server = SqliteMemoryStore.Open(folder);
        var serverKv = Relaxed(server);
        await serverKv.Invoking(k => k.GetAsync(Acme, "fresh")).Should().ThrowAsync<NotFoundException>();
        server.ReadsKvWithoutBlocking(Acme, "fresh").Should().BeTrue("a key never written is known missing without a read");

        await using (var cli = SqliteMemoryStore.Open(folder))
        {
            await Relaxed(cli).SetAsync(Acme, "fresh", Json("7"), null);
        }
        // The server's filter predates the CLI's key: its SET is journaled as if the key were new, and the writer, which
        // catches up with the other process before applying it, continues the CLI's history.
        (await serverKv.SetAsync(Acme, "fresh", Json("8"), null)).Created.Should().BeTrue("the server did not know the key yet");
        var history = await serverKv.GetHistoryAsync(Acme, "fresh");
        history.Items.Select(h => (h.Event, h.Version, h.Value!.Value.GetRawText())).Should().Equal((KvEvents.Created, 1L, "7"), (KvEvents.Updated, 2L, "8"));

        await using (var cli = SqliteMemoryStore.Open(folder))
        {
            await Relaxed(cli).SetAsync(Acme, "other", Json("1"), null);
        }
        // Reads: the idle writer looks for other processes' writes once a second and builds the filter anew.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await ExistsAsync(serverKv, "other"))
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the idle writer should have caught up with the other process");
            await Task.Delay(50);
        }
        (await serverKv.GetAsync(Acme, "other")).Value.GetRawText().Should().Be("1");
    }

    [Fact]
    public async Task A_reopened_store_finds_every_key_through_the_filter_it_built_from_the_tables()
    {
        var folder = Folder("reopen");
        var globex = new Caller("globex", "test");
        string[] keys = ["caf\u00e9", "\u65e5\u672c:\u30ad\u30fc", "app:session:1", "plain", "emoji \U0001F600"];
        await using (var store = SqliteMemoryStore.Open(folder))
        {
            var kv = Relaxed(store);
            foreach (var key in keys)
            {
                await kv.SetAsync(Acme, key, Json("\"acme\""), null);
                await kv.SetAsync(globex, key, Json("\"globex\""), null);
            }
            await kv.SetAsync(Acme, "gone", Json("1"), null);
            await kv.DeleteKeyAsync(Acme, "gone");
        } // closing applies and folds everything: the next open builds its filter from kv_entries and kv_deleted

        await using (var store = SqliteMemoryStore.Open(folder))
        {
            var kv = Relaxed(store);
            foreach (var key in keys)
            {
                (await kv.GetAsync(Acme, key)).Value.GetString().Should().Be("acme", key);
                (await kv.GetAsync(globex, key)).Value.GetString().Should().Be("globex", key);
            }
            store.ReadsKvWithoutBlocking(Acme, "never written").Should().BeTrue();
            store.ReadsKvWithoutBlocking(Acme, "gone").Should().BeFalse("a deleted key keeps its history, so the filter holds it");
            (await kv.SetAsync(Acme, "gone", Json("2"), null)).Version.Should().Be(1);
            (await kv.GetHistoryAsync(Acme, "gone")).Items.Select(h => h.Event).Should().Equal(KvEvents.Created, KvEvents.Deleted, KvEvents.Created);
        }
    }

    [Fact]
    public async Task A_filter_built_by_a_reader_holds_the_tables_keys_and_those_written_meanwhile()
    {
        // Every catch-up defers the build here, as past 250,000 history rows: a reader scans the tables, the writer installs.
        var folder = Folder("scan");
        var keys = Enumerable.Range(0, 300).Select(i => $"swarm:task:{i:D4}").ToList();
        await using (var store = SqliteMemoryStore.OpenWithWriteBehind(folder, new SqliteKvWriteBehind { KeysScannedAtOnce = 0 }))
        {
            await Relaxed(store).SetManyAsync(Acme, [.. keys.Select(k => (KvSetItem?)new KvSetItem(k, Json("1"), null))]);
        }

        var behind = new SqliteKvWriteBehind { KeysScannedAtOnce = 0 };
        await using (var store = SqliteMemoryStore.OpenWithWriteBehind(folder, behind))
        {
            // The scan reads its snapshot, then is held: a key written now is in neither that snapshot nor the keys in
            // memory when the scan began; only the record of keys staged during the scan brings it into the filter.
            using var scanned = new SemaphoreSlim(0);
            using var release = new SemaphoreSlim(0);
            var scan = behind.ScanKeysOnReader!;
            behind.ScanKeysOnReader = async () =>
            {
                var hashes = await scan();
                scanned.Release();
                await release.WaitAsync();
                return hashes;
            };
            var kv = Relaxed(store);
            store.KeyFilterBytes.Should().Be(0, "no filter until the writer's turn has installed the reader's scan");
            store.ReadsKvWithoutBlocking(Acme, "never written").Should().BeFalse("without a filter every unknown key is a table read");
            await kv.SetAsync(Acme, "before:0", Json("0"), null); // its group's turn starts the scan
            (await scanned.WaitAsync(TimeSpan.FromSeconds(20))).Should().BeTrue("the writer's turn starts the scan");

            await kv.SetAsync(Acme, "during:0", Json("2"), null);
            await WaitUntilAsync(() => store.KvWaitingStates == 0, "the idle writer folds the key into the table");
            release.Release();
            await WaitUntilAsync(() => store.KeyFilterBytes > 0, "the writer installs the filter on a later turn");

            store.ClearKvCache(); // from here a key is found only through the filter and the tables
            (await kv.GetAsync(Acme, "during:0")).Value.GetInt32().Should().Be(2, "a key staged while the scan ran is in the filter");
            (await kv.GetAsync(Acme, "before:0")).Value.GetInt32().Should().Be(0);
            foreach (var key in keys)
            {
                (await kv.GetAsync(Acme, key)).Value.GetInt32().Should().Be(1, key);
            }
            store.ReadsKvWithoutBlocking(Acme, "never written").Should().BeTrue("the installed filter knows the key is new");
        }
    }

    private static async Task<bool> ExistsAsync(KvService kv, string key)
    {
        try
        {
            await kv.GetAsync(Acme, key);
            return true;
        }
        catch (NotFoundException)
        {
            return false;
        }
    }

    [Fact]
    public async Task A_second_store_on_the_same_file_has_no_journal_and_the_first_applies_its_sets_over_the_others_writes()
    {
        var folder = Folder("shared");
        await using var server = SqliteMemoryStore.Open(folder);
        var serverKv = Relaxed(server);
        await serverKv.SetAsync(Acme, "x", Json("1"), null);
        await serverKv.SetAsync(Acme, "x", Json("2"), null);
        server.KvJournal!.Appended.Should().Be(2, "a key never written is journaled from its first SET");
        await serverKv.GetHistoryAsync(Acme, "x"); // applied

        // The CLI beside the server: a process of its own on the same file, opened for one command.
        await using (var cli = SqliteMemoryStore.Open(folder))
        {
            cli.KvJournal.Should().BeNull("one process owns the journal; another writes through its writer");
            var cliKv = Relaxed(cli);
            (await cliKv.GetAsync(Acme, "x")).Value.GetRawText().Should().Be("2");
            await cliKv.SetAsync(Acme, "x", Json("3"), null);
        }

        // The server's state of x predates the CLI's write; applying its next SET, the writer first catches up with the
        // other process, so the history goes on from the CLI's row.
        await serverKv.SetAsync(Acme, "x", Json("4"), null);
        var history = await serverKv.GetHistoryAsync(Acme, "x");
        history.Items.Select(h => (h.Version, h.Value!.Value.GetRawText())).Should().Equal((1L, "1"), (2L, "2"), (3L, "3"), (4L, "4"));
        (await serverKv.GetAsync(Acme, "x")).Value.GetRawText().Should().Be("4");
    }

    /// <summary>What a kill -9 leaves of <paramref name="live"/> in <paramref name="image"/>: the database, its WAL and the journal, copied with cp (which does not take the journal's lock).</summary>
    internal static async Task CopyCrashImageAsync(string live, string image)
    {
        Directory.CreateDirectory(image);
        foreach (var file in new[] { "engram.db", "engram.db-wal", "engram.db" + SqliteKvJournal.Suffix })
        {
            var copy = Process.Start("cp", [Path.Combine(live, file), Path.Combine(image, file)])!;
            await copy.WaitForExitAsync();
            copy.ExitCode.Should().Be(0, file);
        }
    }

    [Fact]
    public async Task Restoring_a_backup_over_a_crashed_store_does_not_replay_the_replaced_stores_journal()
    {
        // A server killed after a backup leaves relaxed SETs in its journal, numbered above the backup's applied mark. A
        // restore --force over that folder replaced the database, WAL and index but kept the journal, and the restore's own
        // open replayed those SETs into the restored database: it held a write made after the backup.
        var image = Folder("image");
        var backup = Folder("before.engram-backup");
        await CrashImageAfterABackupAsync(image, backup);

        StoreBackup.Restore(backup, image, force: true).Ok.Should().BeTrue();

        File.Exists(Path.Combine(image, "engram.db" + SqliteKvJournal.Suffix)).Should().BeFalse("the journal belonged to the replaced database");
        await using var restored = SqliteMemoryStore.Open(image);
        var restoredKv = Relaxed(restored);
        (await restoredKv.GetAsync(Acme, "k")).Value.GetRawText().Should().Be("\"backed up\"", "a restore gives the backup's state");
        (await restoredKv.GetHistoryAsync(Acme, "k")).Items.Select(h => h.Value!.Value.GetRawText()).Should().Equal("\"backed up\"");
    }

    /// <summary>A crash image in <paramref name="image"/> whose journal holds one acknowledged, unapplied SET of <c>k</c> ("journaled") over "applied".</summary>
    private async Task CrashImageWithAJournaledSetAsync(string image)
    {
        var live = Folder(Path.GetFileName(image) + "-live");
        await using var store = SqliteMemoryStore.Open(live);
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "k", Json("\"applied\""), null);
        await kv.GetHistoryAsync(Acme, "k"); // applied: in the tables
        var journal = Hold(store);
        await kv.SetAsync(Acme, "k", Json("\"journaled\""), null);
        journal.Pending.Should().Be(1);
        await CopyCrashImageAsync(live, image);
    }

    [Fact]
    public async Task A_backup_of_a_crashed_store_holds_the_sets_its_journal_acknowledged()
    {
        // A backup reads the database file itself. Made by the CLI on the folder of a killed server (not restarted), it
        // missed every relaxed SET acknowledged from the journal and not applied yet; restored, those keys were gone.
        var image = Folder("crashed");
        await CrashImageWithAJournaledSetAsync(image);
        var backup = Folder("crashed.engram-backup");

        StoreBackup.Create(Path.Combine(image, SqliteMemoryStore.FileName), backup, BackupKinds.Manual, TimeProvider.System);

        var restoredFolder = Folder("restored");
        StoreBackup.Restore(backup, restoredFolder, force: false).Ok.Should().BeTrue();
        await using var restored = SqliteMemoryStore.Open(restoredFolder);
        var kv = Relaxed(restored);
        (await kv.GetAsync(Acme, "k")).Value.GetRawText().Should().Be("\"journaled\"", "the SET was acknowledged before the backup");
        (await kv.GetHistoryAsync(Acme, "k")).Items.Select(h => (h.Version, h.Value!.Value.GetRawText())).Should().Equal((1L, "\"applied\""), (2L, "\"journaled\""));
    }

    [Fact]
    public async Task A_journal_the_store_cannot_open_fails_the_open_instead_of_being_skipped()
    {
        // Only another process's lock means "not mine, that process applies it". Any other failure to open the file (a
        // read-only journal or file system, a folder in its place) was taken the same way: the store opened without the
        // records, served the values before them, and when the file opened again replayed them over newer writes.
        var blocked = Folder("blocked");
        Directory.CreateDirectory(Path.Combine(blocked, "engram.db" + SqliteKvJournal.Suffix));
        var open = () => SqliteMemoryStore.Open(blocked);
        open.Should().Throw<StoreException>().WithMessage("*key-value journal*acknowledged SETs*");

        // A read-only journal holding an acknowledged SET (root ignores file permissions: there the folder above stands for it).
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var image = Folder("read-only");
        await CrashImageWithAJournaledSetAsync(image);
        var journalPath = Path.Combine(image, "engram.db" + SqliteKvJournal.Suffix);
        File.SetUnixFileMode(journalPath, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var permissionsBind = true;
        try
        {
            File.OpenHandle(journalPath, FileMode.Open, FileAccess.ReadWrite).Dispose();
            permissionsBind = false;
        }
        catch (UnauthorizedAccessException)
        {
        }
        if (permissionsBind)
        {
            var openReadOnly = () => SqliteMemoryStore.Open(image);
            openReadOnly.Should().Throw<StoreException>().WithMessage("*key-value journal*");
        }
        File.SetUnixFileMode(journalPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await using var reopened = SqliteMemoryStore.Open(image);
        (await Relaxed(reopened).GetAsync(Acme, "k")).Value.GetRawText().Should().Be("\"journaled\"");
    }

    [Fact]
    public async Task A_journal_left_beside_a_database_that_is_gone_is_not_replayed_into_a_new_one()
    {
        // A store reset by deleting its database (and WAL) after a crash kept its journal: the new, empty database's applied
        // mark is 0, so every record in the old file was replayed into it, keys of a store that no longer exists.
        var image = Folder("reset");
        await CrashImageWithAJournaledSetAsync(image);
        File.Delete(Path.Combine(image, "engram.db"));
        File.Delete(Path.Combine(image, "engram.db-wal"));

        await using (var fresh = SqliteMemoryStore.Open(image))
        {
            (await fresh.GetKvAsync(Acme, "k")).Should().BeNull("the new database never had the key");
            // Its own SETs go into a journal started anew: after a crash only they are replayed.
            var journal = Hold(fresh);
            await Relaxed(fresh).SetAsync(Acme, "mine", Json("1"), null);
            journal.Pending.Should().Be(1);
            await CopyCrashImageAsync(image, Folder("reset-crashed"));
        }
        await using var reopened = SqliteMemoryStore.Open(Folder("reset-crashed"));
        (await reopened.GetKvAsync(Acme, "k")).Should().BeNull();
        (await reopened.GetKvAsync(Acme, "mine"))!.ValueJson.Should().Be("1");
    }
}
