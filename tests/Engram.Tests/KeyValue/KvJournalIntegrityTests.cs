using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>
/// What the key-value journal (SqliteKvJournal) does with a file it did not leave as it wrote it: damage in the middle (told
/// apart from a torn last write by the records' batch marks), a journal of another database (told apart by the id in its
/// header), the previous release's format (replayed once), and what happens around it: history pruning racing journaled
/// SETs, and a journal apply that fails inside a writer group. Real files; crash images as a kill -9 leaves them.
/// </summary>
public sealed class KvJournalIntegrityTests : KvJournalTestBase
{
    private static async Task<string?> ValueAsync(KvService kv, string key)
    {
        try
        {
            return (await kv.GetAsync(Acme, key)).Value.GetRawText();
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    private static string JournalPath(string folder) => Path.Combine(folder, SqliteMemoryStore.FileName + SqliteKvJournal.Suffix);

    /// <summary>The offsets of the records in a journal file (after its header), in order.</summary>
    private static List<int> RecordOffsets(byte[] bytes)
    {
        var offsets = new List<int>();
        var position = SqliteKvJournal.FileHeaderBytes;
        while (position + 8 <= bytes.Length && BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(position)) is var size and > 0)
        {
            offsets.Add(position);
            position += 8 + size;
        }
        return offsets;
    }

    [Fact]
    public async Task A_damaged_record_in_the_middle_does_not_drop_the_acknowledged_records_after_it_and_is_reported()
    {
        // A flipped bit in the middle of the journal (bit rot, a bad sector, an edit) read like a torn last write: every
        // record after it was silently dropped. The records after it belong to later batches, copied after the damaged one
        // ended: they are intact and acknowledged, and the open applies them and names the one it could not read.
        var live = Folder("live");
        var image = Folder("image");
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var journal = Hold(store);
            var kv = Relaxed(store);
            for (var i = 1; i <= 4; i++)
            {
                await kv.SetAsync(Acme, $"k{i}", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), null);
            }
            journal.Pending.Should().Be(4, "four SETs, four batches, all waiting");
            await KvJournalTests.CopyCrashImageAsync(live, image);
        }
        var bytes = await File.ReadAllBytesAsync(JournalPath(image));
        var offsets = RecordOffsets(bytes);
        offsets.Should().HaveCount(4);
        bytes[offsets[1]] ^= 0x01; // the second record's length: where the third starts is no longer known from it
        await File.WriteAllBytesAsync(JournalPath(image), bytes);

        await using (var reopened = SqliteMemoryStore.Open(image))
        {
            var kv = Relaxed(reopened);
            (await ValueAsync(kv, "k1")).Should().Be("1");
            (await ValueAsync(kv, "k2")).Should().BeNull("its record is damaged");
            (await ValueAsync(kv, "k3")).Should().Be("3", "an intact record after the damage is applied");
            (await ValueAsync(kv, "k4")).Should().Be("4");
            reopened.OpenNotices.Should().ContainSingle().Which.Kind.Should().Be(StoreNotice.KvJournalDamaged);
            reopened.OpenNotices[0].Message.Should().Contain("damaged in the middle").And.Contain("1 acknowledged write(s) numbered 2..2");
            Directory.GetFiles(image, "engram.db-kvjournal.damaged-*").Should().ContainSingle("the damaged file is kept for inspection");

            // New SETs go on in a file started again: after another crash they are replayed, and nothing of the old one.
            Hold(reopened);
            await kv.SetAsync(Acme, "k2", Json("\"again\""), null);
            await KvJournalTests.CopyCrashImageAsync(image, Folder("again"));
        }
        await using var again = SqliteMemoryStore.Open(Folder("again"));
        again.OpenNotices.Should().BeEmpty();
        var againKv = Relaxed(again);
        (await ValueAsync(againKv, "k2")).Should().Be("\"again\"");
        (await KvHistoryTests.AllHistoryAsync(againKv, Acme, "k3", 10)).Should().ContainSingle("the old records are not replayed twice");
    }

    [Fact]
    public async Task A_torn_last_batch_is_dropped_whole_even_where_records_of_it_are_intact()
    {
        // A crash in the copy of a batch (an MSET) leaves part of it: it was not acknowledged, so none of it counts. The
        // reader replayed the records before the tear (half an MSET), and memmove can write a batch's ends after its middle,
        // so intact records after the torn one must not read as damage in the middle either.
        var live = Folder("live");
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var journal = Hold(store);
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "k0", Json("0"), null);
            await kv.SetManyAsync(Acme, [new KvSetItem("m1", Json("1"), null), new KvSetItem("m2", Json("2"), null), new KvSetItem("m3", Json("3"), null)]);
            journal.Pending.Should().Be(4);
            await KvJournalTests.CopyCrashImageAsync(live, Folder("tail-torn"));
            await KvJournalTests.CopyCrashImageAsync(live, Folder("head-torn"));
        }
        foreach (var (image, record) in new[] { ("tail-torn", 3), ("head-torn", 1) })
        {
            var bytes = await File.ReadAllBytesAsync(JournalPath(Folder(image)));
            var offsets = RecordOffsets(bytes);
            bytes[offsets[record] + 20] ^= 0x40; // in the payload: the CRC no longer matches
            await File.WriteAllBytesAsync(JournalPath(Folder(image)), bytes);

            await using var reopened = SqliteMemoryStore.Open(Folder(image));
            var kv = Relaxed(reopened);
            (await ValueAsync(kv, "k0")).Should().Be("0", image);
            (await ValueAsync(kv, "m1")).Should().BeNull($"{image}: the MSET was torn, so none of it was acknowledged");
            (await ValueAsync(kv, "m2")).Should().BeNull(image);
            (await ValueAsync(kv, "m3")).Should().BeNull(image);
            reopened.OpenNotices.Should().BeEmpty($"{image}: a torn last write is what a crash leaves, not damage");
        }
    }

    [Fact]
    public async Task A_journal_of_another_database_is_moved_aside_not_applied_and_its_own_database_applies_it_from_there()
    {
        // The file carried no identity: one left beside another existing database (a database file copied in, a folder
        // mixed up) was replayed into it whenever its numbers were above that database's applied mark.
        var a = Folder("a");
        var b = Folder("b");
        await using (var store = SqliteMemoryStore.Open(Folder("a-live")))
        {
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "k", Json("\"a applied\""), null);
            await kv.GetHistoryAsync(Acme, "k"); // applied
            Hold(store);
            await kv.SetAsync(Acme, "k", Json("\"a journaled\""), null);
            await KvJournalTests.CopyCrashImageAsync(Folder("a-live"), a);
        }
        await using (var store = SqliteMemoryStore.Open(Folder("b-live")))
        {
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "k", Json("\"b applied\""), null);
            await kv.GetHistoryAsync(Acme, "k"); // applied: b's mark is 1, a's waiting record is numbered 2
            await KvJournalTests.CopyCrashImageAsync(Folder("b-live"), b);
        }
        File.Copy(JournalPath(a), JournalPath(b), overwrite: true);
        File.Delete(JournalPath(a));

        await using (var opened = SqliteMemoryStore.Open(b))
        {
            var kv = Relaxed(opened);
            (await ValueAsync(kv, "k")).Should().Be("\"b applied\"", "a's write is not b's");
            (await KvHistoryTests.AllHistoryAsync(kv, Acme, "k", 10)).Should().ContainSingle();
            opened.OpenNotices.Should().ContainSingle().Which.Kind.Should().Be(StoreNotice.KvJournalForeign);
            opened.OpenNotices[0].Message.Should().Contain("belongs to another database").And.Contain("foreign-");
        }
        var aside = Directory.GetFiles(b, "engram.db-kvjournal.foreign-*").Should().ContainSingle("kept for its own database").Subject;

        File.Move(aside, JournalPath(a));
        await using var own = SqliteMemoryStore.Open(a);
        own.OpenNotices.Should().BeEmpty();
        (await ValueAsync(Relaxed(own), "k")).Should().Be("\"a journaled\"", "its own database applies it");
    }

    /// <summary>A record as the previous release wrote it: no batch field, no file header.</summary>
    private static byte[] LegacyRecord(long jsn, string key, string json)
    {
        var payload = new List<byte>();
        payload.AddRange(BitConverter.GetBytes(jsn));
        payload.AddRange(BitConverter.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        payload.AddRange(BitConverter.GetBytes(long.MinValue));
        foreach (var text in new[] { Acme.Tenant, Acme.Actor, key, json })
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            payload.AddRange(BitConverter.GetBytes(utf8.Length));
            payload.AddRange(utf8);
        }
        var record = new byte[8 + payload.Count];
        BinaryPrimitives.WriteInt32LittleEndian(record, payload.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Crc32.HashToUInt32(payload.ToArray()));
        payload.CopyTo(record, 8);
        return record;
    }

    [Fact]
    public async Task A_journal_the_previous_release_left_is_replayed_once_and_one_without_an_id_is_not_applied_after_that()
    {
        var folder = Folder("upgraded");
        await using (var store = SqliteMemoryStore.Open(folder))
        {
            await Relaxed(store).SetAsync(Acme, "k", Json("\"applied\""), null);
        }
        long applied;
        using (var connection = SqliteConnection.Open(Path.Combine(folder, SqliteMemoryStore.FileName)))
        {
            // The database as the previous release left it: no journal id.
            connection.ExecuteNonQuery($"DELETE FROM store_meta WHERE key = '{SqliteKvJournal.IdentityKey}'");
            applied = connection.ScalarInt64($"SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = '{SqliteKvJournal.AppliedKey}'") ?? 0;
        }
        await File.WriteAllBytesAsync(JournalPath(folder), LegacyRecord(applied + 1, "k", "\"legacy\""));

        await using (var upgraded = SqliteMemoryStore.Open(folder))
        {
            upgraded.OpenNotices.Should().BeEmpty();
            var kv = Relaxed(upgraded);
            (await ValueAsync(kv, "k")).Should().Be("\"legacy\"", "the previous release's crash left an acknowledged SET");
            (await KvHistoryTests.AllHistoryAsync(kv, Acme, "k", 10)).Select(h => h.Version).Should().Equal(1, 2);
        }
        using (var connection = SqliteConnection.Open(Path.Combine(folder, SqliteMemoryStore.FileName)))
        {
            SqliteKvJournal.ParseIdentity(connection.ScalarText($"SELECT value FROM store_meta WHERE key = '{SqliteKvJournal.IdentityKey}'"))
                .Should().NotBeNull("the database has its id once the old journal is applied");
        }

        // The same file again: applied already (below the mark), it is not replayed; one numbered above the mark cannot be
        // this database's any more (its own were applied before it got its id): it is moved aside, not applied.
        await File.WriteAllBytesAsync(JournalPath(folder), LegacyRecord(applied + 1, "k", "\"legacy\""));
        await using (var again = SqliteMemoryStore.Open(folder))
        {
            again.OpenNotices.Should().BeEmpty();
            (await KvHistoryTests.AllHistoryAsync(Relaxed(again), Acme, "k", 10)).Should().HaveCount(2);
        }
        await File.WriteAllBytesAsync(JournalPath(folder), LegacyRecord(applied + 5, "k", "\"stranger\""));
        await using var third = SqliteMemoryStore.Open(folder);
        (await ValueAsync(Relaxed(third), "k")).Should().Be("\"legacy\"");
        third.OpenNotices.Should().ContainSingle().Which.Message.Should().Contain("no database id");
        Directory.GetFiles(folder, "engram.db-kvjournal.foreign-*").Should().ContainSingle();
    }

    [Fact]
    public async Task History_pruning_racing_journaled_sets_loses_no_acknowledged_write_nor_a_live_keys_newest_row()
    {
        // Pruning (the sweeper, Engram:KeyValue:HistoryRetentionDays) asks kv_entries which row is a key's newest, while
        // journaled SETs are acknowledged from memory and applied by the writer in between its chunks. Everything is older
        // than the cutoff here, so only a live key's newest row may survive each pass.
        var live = Folder("live");
        var expected = new Dictionary<string, string?>();
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var kv = Relaxed(store);
            using var stop = new CancellationTokenSource();
            var prunes = 0;
            var pruning = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await store.PruneKvHistoryAsync(long.MaxValue, 0, int.MaxValue);
                    prunes++;
                }
            });
            var writers = Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
            {
                var mine = new Dictionary<string, string?>();
                for (var i = 0; i < 600; i++)
                {
                    var key = $"t{t}-k{i % 7}";
                    if (i % 50 == 49)
                    {
                        await kv.DeleteKeyAsync(Acme, key); // through the writer: a deleted key's last row may go
                        mine[key] = null;
                    }
                    else
                    {
                        var value = $"\"{t}-{i}\"";
                        await kv.SetAsync(Acme, key, Json(value), null);
                        mine[key] = value;
                    }
                }
                return mine;
            })).ToArray();
            foreach (var mine in await Task.WhenAll(writers))
            {
                foreach (var (key, value) in mine)
                {
                    expected[key] = value;
                }
            }
            await stop.CancelAsync();
            await pruning;
            prunes.Should().BeGreaterThan(0);
            store.KvJournal!.Appended.Should().BeGreaterThan(0, "SETs were journaled (those made while a pruning group ran went through the writer)");
            await store.PruneKvHistoryAsync(long.MaxValue, 0, int.MaxValue);
            await CheckAsync(kv, "while open");
            Hold(store);
            await KvJournalTests.CopyCrashImageAsync(live, Folder("image"));
        }
        await using var reopened = SqliteMemoryStore.Open(Folder("image"));
        await CheckAsync(Relaxed(reopened), "after a crash image is reopened");

        async Task CheckAsync(KvService kv, string when)
        {
            foreach (var (key, value) in expected)
            {
                (await ValueAsync(kv, key)).Should().Be(value, $"{key} {when}: its last acknowledged write");
                if (value is not null)
                {
                    var history = await kv.GetHistoryAsync(Acme, key, 1);
                    history.Items.Should().ContainSingle($"{key} {when}: a live key keeps its newest row");
                    history.Items[0].Value!.Value.GetRawText().Should().Be(value, $"{key} {when}");
                }
            }
        }
    }

    [Fact]
    public async Task A_journal_apply_that_fails_fails_the_key_value_writes_of_its_group_instead_of_letting_them_overtake_it()
    {
        // The waiting journaled SETs are the first item of a writer group. When applying them failed, the group's other
        // key-value items ran without them and committed: a DEL after an acknowledged SET found no key, and the SET, applied
        // by a later group, brought the key back after the DEL was acknowledged.
        await using var store = SqliteMemoryStore.Open(Folder("fault"));
        var journal = Hold(store);
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "k", Json("\"set\""), null);
        journal.Pending.Should().Be(1);
        var apply = journal.Apply!;
        var failures = 1;
        journal.Apply = (c, records) =>
        {
            if (Interlocked.Decrement(ref failures) >= 0)
            {
                throw new StoreException("injected: the disk is full");
            }
            apply(c, records);
        };

        bool? deleted = null;
        try
        {
            deleted = await kv.DeleteKeyAsync(Acme, "k", afterWritesUnderWay: true); // through the writer: a relaxed DEL is journaled otherwise
        }
        catch (StoreException ex)
        {
            ex.Message.Should().Contain("injected");
        }
        await store.ApplyKvJournalAsync();
        await store.ApplyKvJournalAsync(); // the records wait again after the failure: the next group applies them
        journal.Pending.Should().Be(0);

        if (deleted is not null)
        {
            deleted.Should().BeTrue("the DEL came after the acknowledged SET");
        }
        (await ValueAsync(kv, "k")).Should().Be(deleted == true ? null : "\"set\"", "the DEL either failed or came after the SET");
    }

    [Fact]
    public async Task A_backup_copied_by_hand_over_a_crashed_store_gets_the_stores_newer_journal_moved_aside_not_replayed()
    {
        // A backup kept the store's journal id. Copied by hand over the database of the crashed store (not by engram restore,
        // which deletes the journal), the store's journal of writes made after the backup was taken for the backup's own and
        // replayed onto its older tables. A backup has an id of its own: that journal is another database's.
        var image = Folder("image");
        var backup = Folder("before.engram-backup");
        await CrashImageAfterABackupAsync(image, backup, ("later", "1"));
        StoreBackup.Verify(backup).Ok.Should().BeTrue("the backup's own id is in its manifest's database and checksums");

        // By hand: the backup's database over the crashed one (its WAL removed); the journal stays where it was.
        var extracted = Path.Combine(Folder("extracted"), "engram.db");
        Directory.CreateDirectory(Path.GetDirectoryName(extracted)!);
        StoreBackup.Verify(backup, extracted).Ok.Should().BeTrue();
        File.Delete(Path.Combine(image, "engram.db-wal"));
        File.Copy(extracted, Path.Combine(image, SqliteMemoryStore.FileName), overwrite: true);

        await using (var opened = SqliteMemoryStore.Open(image))
        {
            var notice = opened.OpenNotices.Should().ContainSingle().Subject;
            notice.Kind.Should().Be(StoreNotice.KvJournalForeign);
            notice.Message.Should().Contain("belongs to another database").And.Contain("foreign-");
            Directory.GetFiles(image, "engram.db-kvjournal.foreign-*").Should().ContainSingle("the crashed store's writes are kept, not applied");
            var kv = Relaxed(opened);
            (await ValueAsync(kv, "k")).Should().Be("\"backed up\"", "the backup's state, not a write made after it");
            (await ValueAsync(kv, "later")).Should().BeNull();
            (await KvHistoryTests.AllHistoryAsync(kv, Acme, "k", 10)).Should().ContainSingle("nothing of the journal was applied");
        }
        await using var again = SqliteMemoryStore.Open(image);
        again.OpenNotices.Should().BeEmpty("the journal started again under the backup's own id");
    }

    /// <summary>A crash image in <paramref name="image"/> whose journal holds two acknowledged SETs ("k": "journaled" over "applied"; "other": 2), with a trigger that refuses every history row.</summary>
    private async Task CrashImageWhoseLeftoverCannotBeAppliedAsync(string image)
    {
        var live = Folder(Path.GetFileName(image) + "-live");
        await using (var store = SqliteMemoryStore.Open(live))
        {
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "k", Json("\"applied\""), null);
            await kv.GetHistoryAsync(Acme, "k"); // applied
            var journal = Hold(store);
            await kv.SetAsync(Acme, "k", Json("\"journaled\""), null);
            await kv.SetAsync(Acme, "other", Json("2"), null);
            journal.Pending.Should().Be(2);
            await KvJournalTests.CopyCrashImageAsync(live, image);
        }
        using var connection = SqliteConnection.Open(Path.Combine(image, SqliteMemoryStore.FileName));
        // A stand-in for a real cause (a full disk, a read-only file): every history row, which applying a record inserts, is refused.
        connection.ExecuteNonQuery("CREATE TRIGGER refuse_history BEFORE INSERT ON kv_history BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    }

    private static void DropRefusal(string image)
    {
        using var connection = SqliteConnection.Open(Path.Combine(image, SqliteMemoryStore.FileName));
        connection.ExecuteNonQuery("DROP TRIGGER refuse_history");
    }

    [Fact]
    public async Task A_leftover_journal_that_cannot_be_applied_leaves_the_store_open_with_a_notice_and_the_writer_applies_it_once_it_can()
    {
        // The open applies a crash's leftover records before serving; when that fails the store still opens (every start would
        // fail otherwise) and says so, and the writer applies them once the cause is gone.
        var image = Folder("image");
        await CrashImageWhoseLeftoverCannotBeAppliedAsync(image);

        await using (var opened = SqliteMemoryStore.Open(image))
        {
            var notice = opened.OpenNotices.Should().ContainSingle("the store opens in spite of the failed apply, and says so").Subject;
            notice.Kind.Should().Be(StoreNotice.KvJournalUnapplied);
            notice.Message.Should().Contain("2 acknowledged write(s) that could not be applied");
            opened.NoticeCount.Should().Be(1);
            opened.KvJournal!.Pending.Should().Be(2, "the records wait for the writer");
            var kv = Relaxed(opened);
            var refused = () => kv.SetAsync(Acme, "third", Json("3"), null);
            (await refused.Should().ThrowAsync<StoreException>()).Which.Message.Should().Contain("refused by the test", "key-value writes fail meanwhile");

            DropRefusal(image);
            await opened.ApplyKvJournalAsync();
            opened.KvJournal.Pending.Should().Be(0, "the writer applied them once it could");
            (await ValueAsync(kv, "k")).Should().Be("\"journaled\"");
            await kv.SetAsync(Acme, "third", Json("3"), null);
        }

        await using var reopened = SqliteMemoryStore.Open(image);
        reopened.OpenNotices.Should().BeEmpty();
        var after = Relaxed(reopened);
        (await ValueAsync(after, "k")).Should().Be("\"journaled\"", "durable once applied");
        (await ValueAsync(after, "other")).Should().Be("2");
        (await ValueAsync(after, "third")).Should().Be("3");
        (await KvHistoryTests.AllHistoryAsync(after, Acme, "k", 10)).Select(h => h.Version).Should().Equal(1, 2);
    }

    /// <summary>
    /// While the leftover waits, its acknowledged SETs are in no state a reader sees: a read would answer what the key held
    /// before them. Key reads are refused instead (a 503 over REST) until the writer has applied them.
    /// </summary>
    [Fact]
    public async Task Reads_never_answer_older_states_than_a_leftover_journal_the_open_could_not_apply()
    {
        var image = Folder("image");
        await CrashImageWhoseLeftoverCannotBeAppliedAsync(image);
        await using var opened = SqliteMemoryStore.Open(image);
        opened.KvJournal!.Pending.Should().Be(2);
        var kv = Relaxed(opened);
        foreach (var key in (string[])["k", "other", "never-written"])
        {
            var read = () => ValueAsync(kv, key);
            (await read.Should().ThrowAsync<StoreException>()).Which.Message.Should().Contain("2 acknowledged write(s)");
        }
        opened.TryGetKvFromMemory(Acme, KvKeys.ToStored(Acme.Tenant, "k"), out _).Should().BeFalse("the in-memory answer is not given either");
        opened.ReadsKvWithoutBlocking(Acme, KvKeys.ToStored(Acme.Tenant, "k")).Should().BeFalse();
        var many = () => opened.GetManyKvAsync(Acme, [KvKeys.ToStored(Acme.Tenant, "k")]);
        await many.Should().ThrowAsync<StoreException>();

        DropRefusal(image);
        (await ValueAsync(kv, "k")).Should().Be("\"journaled\"", "a read tries the leftover again, and reads once it is applied");
        opened.KvJournal.Pending.Should().Be(0);
        (await ValueAsync(kv, "other")).Should().Be("2");
    }
}
