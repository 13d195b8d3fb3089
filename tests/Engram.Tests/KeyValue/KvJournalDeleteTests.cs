using System.Buffers.Binary;
using System.IO.Hashing;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Resp;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.KeyValue;

/// <summary>
/// Relaxed DELs (UNLINK, GETDEL) and expiry changes (EXPIRE and its forms, PERSIST, GETEX with an expiry) of keys whose state
/// is in memory are acknowledged through the key-value journal, as SETs and INCRs are: readers see the change at once, the
/// writer applies the record later exactly as its own command would (history events, versions, seqs), multi-key DEL is one
/// batch, and a crash image replays them (a torn last batch dropped whole).
/// </summary>
public sealed class KvJournalDeleteTests : KvJournalTestBase
{
    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    [Fact]
    public async Task A_relaxed_delete_or_expiry_change_is_journaled_and_read_back_at_once_and_answers_as_the_writer_would()
    {
        await using var store = SqliteMemoryStore.Open(Folder("read"));
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "a", Json("1"), null);
        await kv.SetAsync(Acme, "b", Json("2"), 600);
        await kv.SetAsync(Acme, "c", Json("3"), null);
        await kv.GetHistoryAsync(Acme, "a"); // applied: in the tables
        var journal = Hold(store);
        var before = journal.Appended;

        (await kv.DeleteKeyAsync(Acme, "a")).Should().BeTrue();
        (await kv.GetManyAsync(Acme, ["a"]))[0].Found.Should().BeFalse("readers see the delete at once");
        (await kv.DeleteKeyAsync(Acme, "a")).Should().BeFalse("a DEL counts only keys that existed");
        (await kv.DeleteKeyAsync(Acme, "never")).Should().BeFalse();
        (await store.ExpireKvAsync(Acme, "a", Now + 60_000, WriteDurability.Relaxed)).Should().BeFalse("EXPIRE of a missing key is 0");
        (await store.ExpireKvAsync(Acme, "c", Now + 60_000, WriteDurability.Relaxed)).Should().BeTrue();
        (await kv.GetAsync(Acme, "c")).TtlSeconds.Should().BeInRange(55, 60, "readers see the new expiry at once");
        var persisted = await store.UpdateKvAsync(Acme, "b", (e, _) => e?.ExpiresAtMs is null ? KvChange.Keep : KvChange.ExpireAt(null), WriteDurability.Relaxed);
        persisted.Changed.Should().BeTrue();
        (await store.GetKvAsync(Acme, "b"))!.ExpiresAtMs.Should().BeNull("PERSIST is seen at once");
        var again = await store.UpdateKvAsync(Acme, "b", (e, _) => e?.ExpiresAtMs is null ? KvChange.Keep : KvChange.ExpireAt(null), WriteDurability.Relaxed);
        again.Changed.Should().BeFalse("nothing to persist: nothing written");
        var taken = await store.UpdateKvAsync(Acme, "c", (e, _) => e is null ? KvChange.Keep : KvChange.Remove, WriteDurability.Relaxed);
        (taken.Changed, taken.Previous!.ValueJson).Should().Be((true, "3"), "GETDEL answers the value it deleted");
        (await kv.DeleteKeysAsync(Acme, ["b", "c", "a", "nope"])).Should().Be(1, "of the four only b existed");
        var refused = async () => await store.UpdateKvAsync(Acme, "b", (_, _) => throw new ConflictException("refused"), WriteDurability.Relaxed);
        await refused.Should().ThrowAsync<ConflictException>();

        (journal.Deletes, journal.TtlChanges).Should().Be((3L, 2L), "DEL a, GETDEL c, the DEL of b; EXPIRE c, PERSIST b");
        journal.Appended.Should().Be(before + 5, "nothing else wrote a record");
        journal.Pending.Should().Be(5, "the writer has not applied them");
        (await kv.GetManyAsync(Acme, ["a", "b", "c"])).Should().OnlyContain(l => !l.Found);

        (await store.GetKvHistoryAsync(Acme, "b", 100, null, long.MaxValue)).Items.Select(h => (h.Event, h.Version, h.ValueJson, h.ExpiresAt is null))
            .Should().Equal((KvEvents.Created, 1L, "2", false), (KvEvents.TtlChanged, 2L, (string?)null, true), (KvEvents.Deleted, 2L, (string?)null, true));
        journal.Pending.Should().Be(0);
        (await kv.ListAsync(Acme, "*", 10, null)).Items.Should().BeEmpty();
    }

    /// <summary>The same commands on a journaled (relaxed) store and a full-durability one, which writes through its writer.</summary>
    private static async Task<List<object>> RunSequenceAsync(SqliteMemoryStore store, WriteDurability durability, long t0)
    {
        var replies = new List<object>();
        Task<KvSetResult> Set(string key, string json, long? expires = null) => store.SetKvAsync(Acme, new KvWrite(key, json, expires), durability);
        Task<KvUpdated> Persist(string key) => store.UpdateKvAsync(Acme, key, (e, _) => e?.ExpiresAtMs is null ? KvChange.Keep : KvChange.ExpireAt(null), durability);
        replies.Add((await Set("a", "1")).Version);
        replies.Add((await Set("a", "2")).Version);
        replies.Add(await store.ExpireKvAsync(Acme, "a", t0 + 100_000, durability));
        replies.Add(await store.DeleteKvAsync(Acme, "a", durability));
        replies.Add(await store.DeleteKvAsync(Acme, "a", durability));
        replies.Add(await store.ExpireKvAsync(Acme, "a", t0 + 100_000, durability));
        replies.Add((await Set("a", "3", t0 + 200_000)).Version);
        replies.Add((await Persist("a")).Changed);
        replies.Add((await Persist("a")).Changed);
        replies.Add(await store.IncrementKvAsync(Acme, "b", 5, null, durability));
        replies.Add(await store.ExpireKvAsync(Acme, "b", t0 + 300_000, durability));
        replies.Add(await store.IncrementKvAsync(Acme, "b", 1, null, durability));
        replies.Add(await store.DeleteManyKvAsync(Acme, ["a", "b", "c"], durability));
        replies.Add((await Set("c", "\"c\"")).Version);
        replies.Add((await store.UpdateKvAsync(Acme, "c", (e, _) => e is null ? KvChange.Keep : KvChange.Remove, durability)).Previous!.ValueJson);
        replies.Add((await Set("e", "\"short\"", Now + 50)).Version);
        await Task.Delay(120);
        replies.Add(await store.DeleteKvAsync(Acme, "e", durability));
        replies.Add(await store.ExpireKvAsync(Acme, "e", t0 + 100_000, durability));
        replies.Add((await Set("e", "\"again\"")).Version);
        replies.Add(await store.DeleteKvAsync(Acme, "e", durability));
        replies.Add((await Set("e", "\"third\"")).Version);
        return replies;
    }

    private static async Task<List<(string Event, long Version, string? Value, DateTimeOffset? Expires)>> HistoryAsync(SqliteMemoryStore store, string key) =>
        // (The short expiry is made from each run's own clock.)
        [.. (await store.GetKvHistoryAsync(Acme, key, 100, null, long.MaxValue)).Items.Select(h => (h.Event, h.Version, h.ValueJson,
            h.ValueJson == "\"short\"" ? null : h.ExpiresAt))];

    [Fact]
    public async Task Journaled_deletes_and_expiry_changes_leave_the_replies_history_and_states_the_writer_path_leaves()
    {
        await using var journaled = SqliteMemoryStore.Open(Folder("journaled"));
        await using var full = SqliteMemoryStore.Open(Folder("full"));
        var journal = Hold(journaled); // every record waits: the writer applies them together, a key's records as a run
        var t0 = Now;

        var viaJournal = await RunSequenceAsync(journaled, WriteDurability.Relaxed, t0);
        (journal.Deletes, journal.TtlChanges).Should().Be((5L, 3L), "DEL a, MDEL a b, GETDEL c, DEL e; EXPIRE a, PERSIST a, EXPIRE b");
        journal.Pending.Should().BeGreaterThan(10);
        var viaWriter = await RunSequenceAsync(full, WriteDurability.Full, t0);
        full.KvJournal!.Appended.Should().Be(0, "full durability goes through the writer");

        viaJournal.Should().Equal(viaWriter);
        foreach (var key in new[] { "a", "b", "c", "e" })
        {
            var history = await HistoryAsync(journaled, key);
            journal.Pending.Should().Be(0);
            history.Should().Equal(await HistoryAsync(full, key), $"{key}'s history is the writer path's");
            (await journaled.GetKvHistoryAsync(Acme, key, 100, null, long.MaxValue)).Items.Select(h => h.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        }
        (await HistoryAsync(journaled, "a")).Select(h => h.Event).Should().Equal(KvEvents.Created, KvEvents.Updated, KvEvents.TtlChanged, KvEvents.Deleted,
            KvEvents.Created, KvEvents.TtlChanged, KvEvents.Deleted);
        foreach (var key in new[] { "a", "b", "c", "e" })
        {
            var (j, f) = (await journaled.GetKvAsync(Acme, key), await full.GetKvAsync(Acme, key));
            (j?.ValueJson, j?.Version, j?.ExpiresAtMs).Should().Be((f?.ValueJson, f?.Version, f?.ExpiresAtMs), key);
        }
        // The change log (seq given at apply time) names the same operations in the same order.
        var changes = await journaled.ReadChangesAsync(0, 1000);
        var fullChanges = await full.ReadChangesAsync(0, 1000);
        changes.Select(c => (c.EntityId, c.Op)).Should().Equal(fullChanges.Select(c => (c.EntityId, c.Op)));
        changes.Select(c => c.Seq).Should().BeInAscendingOrder();
    }

    [Fact]
    public async Task Deletes_and_sets_racing_from_several_tasks_leave_the_exact_final_state_and_one_history_row_per_change()
    {
        await using var store = SqliteMemoryStore.Open(Folder("race"));
        var journal = store.KvJournal!;
        journal.LingerMs = 1;
        journal.ApplyBatch = 16;
        var kv = Relaxed(store);
        const int Tasks = 8, Rounds = 300;
        var shared = new[] { "shared:0", "shared:1", "shared:2" };
        var deletedShared = new int[shared.Length];
        var setShared = new int[shared.Length];
        await Task.WhenAll(Enumerable.Range(0, Tasks).Select(t => Task.Run(async () =>
        {
            var random = new Random(t);
            for (var n = 0; n < Rounds; n++)
            {
                var own = $"own:{t}:{n % 4}";
                // DEL then SET then DEL of the task's own key (the last step decides its final state), and the shared keys
                // changed by everyone; now and then through the writer (an NX SET, a DEL after writes under way).
                await kv.DeleteKeyAsync(Acme, own, afterWritesUnderWay: n % 17 == 0);
                await kv.SetAsync(Acme, own, Json($"\"{t}-{n}\""), n % 5 == 0 ? 600 : null);
                if (n % 3 == 0)
                {
                    (await kv.DeleteKeysAsync(Acme, [own])).Should().Be(1, "the task's own SET just made it");
                }
                var s = random.Next(shared.Length);
                switch (random.Next(6))
                {
                    case 0 or 1:
                        Interlocked.Add(ref deletedShared[s], await kv.DeleteKeysAsync(Acme, [shared[s], $"own:{t}:9"]));
                        break;
                    case 2:
                        try
                        {
                            await kv.SetAsync(Acme, shared[s], Json("\"nx\""), null, nx: true);
                            Interlocked.Increment(ref setShared[s]);
                        }
                        catch (ConflictException)
                        {
                        }
                        break;
                    case 3:
                        await store.ExpireKvAsync(Acme, shared[s], Now + 600_000, WriteDurability.Relaxed);
                        break;
                    default:
                        await kv.SetAsync(Acme, shared[s], Json($"\"{t}-{n}\""), null);
                        Interlocked.Increment(ref setShared[s]);
                        break;
                }
            }
        })));

        journal.Deletes.Should().BeGreaterThan(Tasks * Rounds / 2, "most deletes were journaled");
        for (var t = 0; t < Tasks; t++)
        {
            for (var k = 0; k < 4; k++)
            {
                var last = Enumerable.Range(0, Rounds).Last(n => n % 4 == k);
                var found = (await kv.GetManyAsync(Acme, [$"own:{t}:{k}"]))[0];
                found.Found.Should().Be(last % 3 != 0, $"own:{t}:{k} ends with round {last}'s {(last % 3 == 0 ? "DEL" : "SET")}");
                if (found.Found)
                {
                    found.Value!.Value.GetString().Should().Be($"{t}-{last}");
                }
            }
        }
        for (var s = 0; s < shared.Length; s++)
        {
            var history = await KvHistoryTests.AllHistoryAsync(kv, Acme, shared[s], 1000);
            history.Count(h => h.Event == KvEvents.Deleted).Should().Be(deletedShared[s], $"{shared[s]}: each DEL that counted it deleted it once");
            history.Count(h => h.Event is KvEvents.Created or KvEvents.Updated).Should().Be(setShared[s]);
            history.Select(h => h.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
            for (var i = 1; i < history.Count; i++)
            {
                var (before, after) = (history[i - 1], history[i]);
                if (after.Event == KvEvents.Deleted)
                {
                    before.Event.Should().NotBe(KvEvents.Deleted, $"{shared[s]} is not deleted twice in a row");
                }
                var expected = after.Event == KvEvents.Deleted ? before.Version : before.Event == KvEvents.Deleted ? 1 : before.Version + 1;
                after.Version.Should().Be(expected, $"{shared[s]}: {before.Event} v{before.Version} then {after.Event}");
            }
            var exists = (await kv.GetManyAsync(Acme, [shared[s]]))[0].Found;
            exists.Should().Be(history.Count > 0 && history[^1].Event != KvEvents.Deleted);
        }
    }

    [Fact]
    public async Task A_crash_image_replays_deletes_and_expiry_changes_and_drops_a_torn_last_batch_whole()
    {
        var live = Folder("live");
        var image = Folder("image");
        long expiresB;
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var kv = Relaxed(store);
            foreach (var key in new[] { "a", "b", "c", "d", "e" })
            {
                await kv.SetAsync(Acme, key, Json($"\"{key}\""), key == "c" ? 600 : null);
            }
            await kv.GetHistoryAsync(Acme, "a"); // applied: in the tables
            var journal = Hold(store);
            (await kv.DeleteKeyAsync(Acme, "a")).Should().BeTrue();
            expiresB = Now + 60_000;
            (await store.ExpireKvAsync(Acme, "b", expiresB, WriteDurability.Relaxed)).Should().BeTrue();
            (await store.UpdateKvAsync(Acme, "c", (e, _) => KvChange.ExpireAt(null), WriteDurability.Relaxed)).Changed.Should().BeTrue();
            (await kv.DeleteKeysAsync(Acme, ["d", "e"])).Should().Be(2);
            journal.Pending.Should().Be(5);

            await KvJournalTests.CopyCrashImageAsync(live, image);
            using var copied = File.OpenHandle(Path.Combine(image, "engram.db-kvjournal"), FileMode.Open, FileAccess.ReadWrite);
            var scan = SqliteKvJournal.Read(copied, 0);
            scan.Records.Select(r => (r.Write.StoredKey, r.Kind)).Should().Equal(("a", SqliteKvJournal.RecordKind.Deleted),
                ("b", SqliteKvJournal.RecordKind.TtlChanged), ("c", SqliteKvJournal.RecordKind.TtlChanged), ("d", SqliteKvJournal.RecordKind.Deleted),
                ("e", SqliteKvJournal.RecordKind.Deleted));
            // The crash cut the copy of the DEL of d and e short: its second record is unreadable (a byte of it changed).
            var last = new byte[1];
            RandomAccess.Read(copied, last, scan.ValidBytes - 2);
            last[0] ^= 0x5A;
            RandomAccess.Write(copied, last, scan.ValidBytes - 2);
        }

        await using (var reopened = SqliteMemoryStore.Open(image))
        {
            var kv = Relaxed(reopened);
            reopened.KvJournal!.Pending.Should().Be(0, "the opener applied the records before serving");
            reopened.OpenNotices.Should().BeEmpty("a torn last batch is no damage");
            (await kv.GetManyAsync(Acme, ["a"]))[0].Found.Should().BeFalse();
            (await reopened.GetKvAsync(Acme, "b"))!.ExpiresAtMs.Should().Be(expiresB, "the expiry change was replayed");
            (await reopened.GetKvAsync(Acme, "c"))!.ExpiresAtMs.Should().BeNull("the PERSIST was replayed");
            (await kv.GetManyAsync(Acme, ["d", "e"])).Should().OnlyContain(l => l.Found, "the torn DEL of d and e is dropped whole (it was never acknowledged)");
            (await kv.GetHistoryAsync(Acme, "a")).Items.Select(h => (h.Event, h.Version)).Should().Equal((KvEvents.Created, 1L), (KvEvents.Deleted, 1L));
            (await kv.GetHistoryAsync(Acme, "b")).Items.Select(h => (h.Event, h.Version)).Should().Equal((KvEvents.Created, 1L), (KvEvents.TtlChanged, 2L));
            (await kv.GetHistoryAsync(Acme, "d")).Items.Select(h => h.Event).Should().Equal(KvEvents.Created);
            // New records go on from there (their numbers reuse the dropped batch's), and a clean reopen keeps the expiries.
            (await kv.DeleteKeysAsync(Acme, ["d", "e"])).Should().Be(2);
            (await reopened.ExpireKvAsync(Acme, "c", expiresB, WriteDurability.Relaxed)).Should().BeTrue();
        }
        await using (var again = SqliteMemoryStore.Open(image))
        {
            var kv = Relaxed(again);
            (await kv.GetManyAsync(Acme, ["d", "e"])).Should().OnlyContain(l => !l.Found);
            (await again.GetKvAsync(Acme, "b"))!.ExpiresAtMs.Should().Be(expiresB);
            (await again.GetKvAsync(Acme, "c"))!.ExpiresAtMs.Should().Be(expiresB);
            (await kv.GetHistoryAsync(Acme, "c")).Items.Select(h => (h.Event, h.Version)).Should().Equal((KvEvents.Created, 1L), (KvEvents.TtlChanged, 2L),
                (KvEvents.TtlChanged, 3L));
        }
    }

    [Fact]
    public async Task The_journal_header_is_format_3_which_the_previous_releases_check_refuses_and_a_format_2_file_is_still_applied()
    {
        var live = Folder("format");
        var image = Folder("format-image");
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "k", Json("1"), null);
            await kv.GetHistoryAsync(Acme, "k");
            Hold(store);
            await kv.SetAsync(Acme, "k", Json("2"), null);
            await KvJournalTests.CopyCrashImageAsync(live, image);
        }
        var path = Path.Combine(image, "engram.db-kvjournal");
        using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            var header = new byte[SqliteKvJournal.FileHeaderBytes];
            RandomAccess.Read(file, header, 0);
            BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(24)).Should().Be(3u);
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(20));
            crc.Should().NotBe(Crc32.HashToUInt32(header.AsSpan(0, 20)),
                "the previous release checks the CRC of the first 20 bytes: it takes this header for a damaged one and sets the file aside unapplied");
            // Rewritten as the previous release wrote it (format 2: no format field, the CRC of 20 bytes): still applied here.
            header.AsSpan(24).Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), Crc32.HashToUInt32(header.AsSpan(0, 20)));
            RandomAccess.Write(file, header, 0);
        }
        await using (var reopened = SqliteMemoryStore.Open(image))
        {
            reopened.OpenNotices.Should().BeEmpty();
            (await reopened.GetKvAsync(Acme, "k"))!.ValueJson.Should().Be("2", "a format 2 journal of this database is applied");
            Hold(reopened);
            (await reopened.DeleteKvAsync(Acme, "k", WriteDurability.Relaxed)).Should().BeTrue();
            reopened.KvJournal!.Deletes.Should().Be(1);
            var second = Folder("format-image-2");
            await KvJournalTests.CopyCrashImageAsync(image, second); // (the store holds the file's lock: cp does not take it)
            using var file = File.OpenHandle(Path.Combine(second, "engram.db-kvjournal"), FileMode.Open, FileAccess.Read);
            var header = new byte[SqliteKvJournal.FileHeaderBytes];
            RandomAccess.Read(file, header, 0);
            BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(24)).Should().Be(3u, "the header was rewritten as format 3 before records of the new kinds");
            SqliteKvJournal.Read(file, 0).Records.Select(r => r.Kind).Should().Equal(SqliteKvJournal.RecordKind.Deleted);
        }
    }

    [Fact]
    public async Task Over_resp_del_unlink_getdel_expire_persist_and_getex_are_journaled_and_a_pipelined_del_does_not_overtake_its_connections_write()
    {
        await using var server = await EngramServer.StartAsync(Backend.Sqlite, RespServerFixture.Configure);
        var port = server.RespPort;
        var store = (SqliteMemoryStore)server.Services.GetRequiredService<IMemoryStore>();
        using var c = await RespClient.ConnectAsync(port);
        foreach (var key in new[] { "r:1", "r:2", "r:3", "r:4", "r:5" })
        {
            (await c.CallAsync("SET", key, "v")).Should().Be("+OK");
        }
        var journal = store.KvJournal!;
        var (deletes, ttls) = (journal.Deletes, journal.TtlChanges);
        (await c.CallAsync("DEL", "r:1")).Should().Be(1L);
        (await c.CallAsync("GET", "r:1")).Should().BeNull();
        (await c.CallAsync("DEL", "r:1")).Should().Be(0L);
        (await c.CallAsync("UNLINK", "r:2", "r:1", "r:none")).Should().Be(1L);
        (await c.CallAsync("EXPIRE", "r:3", "100")).Should().Be(1L);
        (await c.CallAsync("TTL", "r:3")).Should().Be(100L);
        (await c.CallAsync("EXPIRE", "r:3", "50", "GT")).Should().Be(0L);
        (await c.CallAsync("PERSIST", "r:3")).Should().Be(1L);
        (await c.CallAsync("TTL", "r:3")).Should().Be(-1L);
        (await c.CallAsync("EXPIRE", "r:none", "100")).Should().Be(0L);
        (await c.CallAsync("GETEX", "r:4", "EX", "200")).Should().Be("v");
        (await c.CallAsync("TTL", "r:4")).Should().Be(200L);
        (await c.CallAsync("GETDEL", "r:4")).Should().Be("v");
        (await c.CallAsync("EXISTS", "r:4")).Should().Be(0L);
        (await c.CallAsync("PEXPIRE", "r:5", "-1")).Should().Be(1L, "a time in the past deletes the key");
        (await c.CallAsync("EXISTS", "r:5")).Should().Be(0L);
        (journal.Deletes - deletes, journal.TtlChanges - ttls).Should().Be((4L, 3L), "DEL, UNLINK, GETDEL, PEXPIRE -1; EXPIRE, PERSIST, GETEX");

        // A DEL and an EXPIRE pipelined after the connection's SET XX (which goes to the writer): the test holds the state
        // lock, so the SET XX cannot finish first; a DEL journaled past it would leave the key set.
        (await c.CallAsync("SET", "r:own", "1")).Should().Be("+OK");
        (await c.CallAsync("SET", "r:ttl", "1")).Should().Be("+OK");
        (deletes, ttls) = (journal.Deletes, journal.TtlChanges);
        using (new LockHolder(store.KvStateLock))
        {
            await c.SendRawAsync([.. RespClient.Encode("SET", "r:own", "2", "XX"), .. RespClient.Encode("DEL", "r:own"),
                .. RespClient.Encode("SET", "r:ttl", "2", "XX"), .. RespClient.Encode("EXPIRE", "r:ttl", "300"), .. RespClient.Encode("EXISTS", "r:own")]);
            await Task.Delay(200);
        }
        c.Read().Should().Be("+OK");
        c.Read().Should().Be(1L);
        c.Read().Should().Be("+OK");
        c.Read().Should().Be(1L);
        c.Read().Should().Be(0L);
        (journal.Deletes, journal.TtlChanges).Should().Be((deletes, ttls), "the DEL and EXPIRE followed the connection's SET XX through the writer");
        (await c.CallAsync("TTL", "r:ttl")).Should().Be(300L);
    }
}
