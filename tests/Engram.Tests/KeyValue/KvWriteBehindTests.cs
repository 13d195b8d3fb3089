using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.KeyValue;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>
/// Key-value entries are written behind (SqliteKvWriteBehind): a write commits its history row and
/// change-log entry, and the entry reaches kv_entries later. These tests hold it to the promise that
/// the history is the truth: what a crash leaves unfolded is replayed to exactly the rows a clean
/// fold writes, other processes on the same file see every write, and table-reading operations
/// (expiry sweep, listing) never act on a row the waiting state has overtaken.
/// </summary>
public sealed class KvWriteBehindTests : IDisposable
{
    private static readonly Caller Acme = new("acme", "test");
    private static readonly Caller Globex = new("globex", "test");
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    private string Folder(string name) => Path.Combine(_data.Path, name);

    /// <summary>An engine whose write-behind folds after a few keys (and keeps at most <paramref name="cacheBytes"/> of states), not thousands.</summary>
    private static EngramEngine OpenSmall(string folder, int highWater, int chunk, long rows, long cacheBytes = SqliteKvWriteBehind.DefaultCacheBytes,
        TimeProvider? clock = null)
    {
        var store = SqliteMemoryStore.OpenWithWriteBehind(folder,
            new SqliteKvWriteBehind { HighWater = highWater, ChunkSize = chunk, MaxUnfoldedRows = rows }, clock);
        var engine = new EngramEngine(store, new MemoryLimits(), new SearchOptions(), BuiltinEmbeddingProvider.Default, clock);
        store.KvCacheBytesLimit = cacheBytes;
        return engine;
    }

    /// <summary>
    /// Runs <paramref name="read"/> until the store keeps <paramref name="key"/>'s state, at most 5 times; returns the reads
    /// it took, 0 when none kept it. A read keeps what it found unless a drop ran meanwhile (its own, the cache being at its
    /// bound, or the writer making room): by design it then keeps nothing, and the next read keeps it.
    /// </summary>
    private static async Task<int> ReadUntilKeptAsync(SqliteMemoryStore store, string key, Func<Task> read)
    {
        for (var reads = 1; reads <= 5; reads++)
        {
            await read();
            if (store.ReadsKvWithoutBlocking(Acme, key))
            {
                return reads;
            }
        }
        return 0;
    }

    /// <summary>Every key of Acme's matching <paramref name="pattern"/>, page by page.</summary>
    private static async Task<List<KvKeyInfo>> ListAllAsync(KvService kv, string pattern, int pageSize)
    {
        var listed = new List<KvKeyInfo>();
        string? cursor = null;
        do
        {
            var page = await kv.ListAsync(Acme, pattern, pageSize, cursor);
            listed.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return listed;
    }

    private static async Task WaitUntilFoldedAsync(SqliteMemoryStore store)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (store.KvWaitingStates > 0)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the idle writer folds everything");
            await Task.Delay(50);
        }
    }

    /// <summary>A mix of every kind of KV write, with time passing so some TTLs run out on the way.</summary>
    private static async Task WriteMixAsync(KvService kv, ManualClock clock)
    {
        var random = new Random(42);
        for (var i = 0; i < 400; i++)
        {
            var caller = random.Next(4) == 0 ? Globex : Acme;
            var key = $"k{random.Next(25)}";
            try
            {
                switch (random.Next(7))
                {
                    case 0 or 1:
                        await kv.SetAsync(caller, key, Json($"\"v{i}\""), random.Next(3) == 0 ? random.Next(1, 30) : 0);
                        break;
                    case 2:
                        await kv.SetAsync(caller, key, Json($"{i}"), 0, nx: random.Next(2) == 0, xx: false);
                        break;
                    case 3:
                        await kv.IncrementAsync(caller, key, random.Next(1, 5));
                        break;
                    case 4:
                        await kv.ExpireAsync(caller, key, random.Next(0, 20));
                        break;
                    case 5:
                        await kv.DeleteAsync(caller, key);
                        break;
                    default:
                        await kv.SetManyAsync(caller, [new KvSetItem(key, Json("[1,2]"), 5), new KvSetItem(key + "b", Json("{}"), 0)]);
                        break;
                }
            }
            catch (Exception ex) when (ex is ConflictException or NotFoundException)
            {
                // nx on an existing key, incr of a non-integer, expire or delete of a missing key: part of the mix
            }
            clock.Advance(TimeSpan.FromMilliseconds(random.Next(0, 2500)));
        }
    }

    /// <summary>Every row of kv_entries and kv_deleted, in key order, as text.</summary>
    private static List<string> Tables(string folder)
    {
        using var c = SqliteConnection.Open(Path.Combine(folder, SqliteMemoryStore.FileName), create: false);
        var rows = new List<string>();
        foreach (var (sql, columns) in new[]
        {
            ("SELECT tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid FROM kv_entries ORDER BY tenant, key", 9),
            ("SELECT 'deleted', tenant, key, last_hid FROM kv_deleted ORDER BY tenant, key", 4),
        })
        {
            using var statement = c.Prepare(sql);
            while (statement.Step())
            {
                rows.Add(string.Join("|", Enumerable.Range(0, columns).Select(i => statement.GetTextOrNull(i) ?? "NULL")));
            }
        }
        return rows;
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(8, 3)] // fold cycles under way all through the writes, one chunk of 3 keys after each group
    [InlineData(24, 24)] // chunks long enough for the 16-row statements
    public async Task States_left_unfolded_by_a_crash_replay_to_exactly_the_rows_a_clean_fold_writes(int highWater, int chunk)
    {
        // Reference: the same writes, then a clean close (the writer folds everything).
        var referenceClock = new ManualClock(Start);
        await using (var reference = EngramEngine.OpenSqlite(Folder("clean"), clock: referenceClock))
        {
            await WriteMixAsync(reference.KeyValue, referenceClock);
        }

        // The crash: the process that wrote never folds; a second opener finds only the history.
        var clock = new ManualClock(Start);
        await using var crashed = highWater == 0
            ? EngramEngine.OpenSqlite(Folder("crash"), clock: clock)
            : OpenSmall(Folder("crash"), highWater, chunk, rows: 64, clock: clock);
        await WriteMixAsync(crashed.KeyValue, clock);
        ((SqliteMemoryStore)crashed.Store).KvWaitingStates.Should().BeGreaterThan(0, "the writes wait in memory, not in kv_entries");
        var unfolded = Tables(Folder("crash"));

        await using (var reopened = EngramEngine.OpenSqlite(Folder("crash"), clock: clock))
        {
            Tables(Folder("crash")).Should().Equal(Tables(Folder("clean")), "the replay at open rebuilt the entries from the history");
        }
        unfolded.Should().NotEqual(Tables(Folder("clean")), "without the replay the table would have been behind");
    }

    [Fact]
    public async Task Another_process_on_the_same_file_sees_every_write_and_this_one_sees_its_writes_back()
    {
        var clock = new ManualClock(Start);
        await using var server = EngramEngine.OpenSqlite(Folder("shared"), clock: clock);
        await server.KeyValue.SetAsync(Acme, "k", Json("1"), 0);
        await server.KeyValue.SetAsync(Acme, "gone", Json("1"), 0);
        await server.KeyValue.DeleteAsync(Acme, "gone");

        await using (var cli = EngramEngine.OpenSqlite(Folder("shared"), clock: clock))
        {
            (await cli.KeyValue.GetAsync(Acme, "k")).Value.GetInt32().Should().Be(1);
            await cli.Invoking(c => c.KeyValue.GetAsync(Acme, "gone")).Should().ThrowAsync<NotFoundException>();
            (await cli.KeyValue.SetAsync(Acme, "k", Json("2"), 0)).Version.Should().Be(2);
            await cli.KeyValue.SetAsync(Acme, "gone", Json("\"back\""), 0);
        }

        // The server notices the other writer at its next transaction and replays its history.
        await server.KeyValue.SetAsync(Acme, "unrelated", Json("0"), 0);
        (await server.KeyValue.GetAsync(Acme, "k")).Value.GetInt32().Should().Be(2);
        (await server.KeyValue.IncrementAsync(Acme, "k", 1)).Should().Be(3);
        (await server.KeyValue.GetHistoryAsync(Acme, "k")).Items.Select(h => (h.Event, h.Version))
            .Should().Equal(("created", 1L), ("updated", 2L), ("incremented", 3L));
        (await server.KeyValue.GetHistoryAsync(Acme, "gone")).Items.Select(h => h.Event).Should().Equal("created", "deleted", "created");
    }

    [Fact]
    public async Task A_key_written_many_times_in_one_group_shows_its_last_state_and_keeps_every_change()
    {
        var clock = new ManualClock(Start);
        await using (var engine = EngramEngine.OpenSqlite(Folder("hot"), clock: clock))
        {
            var kv = engine.KeyValue;
            // One write item per set-many: the same keys over and over, with a delete and a re-create among them.
            await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 30).Select(i => new KvSetItem($"hot{i % 3}", Json($"{i}"), 0))]);
            await kv.TransactAsync(Acme, ["hot0", "hot1"], t =>
            {
                // Commands in a transaction complete at once (the store is the transaction's, in memory).
                t.Kv.SetAsync(Acme, "hot0", Json("100"), 0).GetAwaiter().GetResult();
                t.Kv.DeleteAsync(Acme, "hot1").GetAwaiter().GetResult();
                t.Kv.SetAsync(Acme, "hot0", Json("101"), 0).GetAwaiter().GetResult();
                t.Kv.SetAsync(Acme, "hot1", Json("\"again\""), 0).GetAwaiter().GetResult();
                return 0;
            });
            // And many concurrent writers of one key, so the writer's groups hold it many times.
            await Task.WhenAll(Enumerable.Range(0, 200).Select(i => kv.SetAsync(Acme, "counted", Json($"{i}"), 0)));
            await kv.SetAsync(Acme, "counted", Json("\"last\""), 0);

            (await kv.GetAsync(Acme, "hot0")).Value.GetInt32().Should().Be(101);
            (await kv.GetAsync(Acme, "hot1")).Value.GetString().Should().Be("again");
            (await kv.GetAsync(Acme, "hot2")).Value.GetInt32().Should().Be(29);
            (await kv.GetAsync(Acme, "counted")).Value.GetString().Should().Be("last");
            (await kv.GetHistoryAsync(Acme, "hot0", limit: 100)).Items.Should().HaveCount(12, "ten sets, then two in the transaction");
            (await kv.GetHistoryAsync(Acme, "hot1", limit: 100)).Items.Select(h => h.Event).Should()
                .Equal(["created", .. Enumerable.Repeat("updated", 9), "deleted", "created"], "ten sets, the delete and the re-creation");
            (await kv.GetHistoryAsync(Acme, "counted", limit: 500)).Items.Should().HaveCount(201);
        }
        // Folded at the close: the table holds the last states.
        Tables(Folder("hot")).Where(r => r.StartsWith("acme|", StringComparison.Ordinal)).Select(r => string.Join("|", r.Split('|')[1..3]))
            .Should().Equal("counted|\"last\"", "hot0|101", "hot1|\"again\"", "hot2|29");
    }

    [Fact]
    public async Task History_rows_written_together_by_one_item_read_back_as_rows_written_one_by_one()
    {
        var clock = new ManualClock(Start);
        await using var engine = EngramEngine.OpenSqlite(Folder("rows"), clock: clock);
        var kv = engine.KeyValue;
        // 37 changes in one item: two statements of 16 rows and five single rows, against the same writes one at a time.
        var items = Enumerable.Range(0, 37).Select(i => new KvSetItem($"k{i:D2}", Json(i % 2 == 0 ? $"{i}" : $"\"v{i}\""), i % 3 * 60)).ToList();
        await kv.SetManyAsync(Acme, [.. items.Select(i => i with { Key = "many:" + i.Key })]);
        foreach (var item in items)
        {
            await kv.SetAsync(Acme, "one:" + item.Key, item.Value, item.TtlSeconds);
        }
        // The change log lists every change once, in the order written.
        (await engine.Store.ReadChangesAsync(0, 1000)).Where(c => c.Entity == Engram.Core.Storage.ChangeRecord.KeyValueEntity).Select(c => c.EntityId)
            .Should().Equal([.. items.Select(i => "many:" + i.Key), .. items.Select(i => "one:" + i.Key)]);
        foreach (var item in items)
        {
            var many = (await kv.GetHistoryAsync(Acme, "many:" + item.Key)).Items.Should().ContainSingle().Subject;
            var one = (await kv.GetHistoryAsync(Acme, "one:" + item.Key)).Items.Should().ContainSingle().Subject;
            (many.Event, many.Version, many.Value?.GetRawText(), many.ExpiresAt, many.At).Should().Be((one.Event, one.Version, one.Value?.GetRawText(), one.ExpiresAt, one.At));
            many.Value!.Value.GetRawText().Should().Be(item.Value.GetRawText());
        }
    }

    [Fact]
    public async Task An_idle_server_notices_another_process_writes_without_writing_itself()
    {
        await using var server = EngramEngine.OpenSqlite(Folder("idle"));
        await server.KeyValue.SetAsync(Acme, "k", Json("1"), 0);
        await using (var cli = EngramEngine.OpenSqlite(Folder("idle")))
        {
            await cli.KeyValue.SetAsync(Acme, "k", Json("2"), 0);
        }
        // The writer looks once a second when it has nothing to do.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await server.KeyValue.GetAsync(Acme, "k")).Value.GetInt32() != 2)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the idle writer should have caught up with the other process");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Many_keys_fold_in_chunks_and_every_operation_sees_the_newest_values()
    {
        const int highWater = 1024;
        const int keys = highWater * 20;
        await using var engine = OpenSmall(Folder("many"), highWater, chunk: 128, rows: 4 * highWater);
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        var bound = store.KvStatesBound;
        bound.Should().Be(2 * highWater);
        for (var start = 0; start < keys; start += 1000)
        {
            await kv.SetManyAsync(Acme, [.. Enumerable.Range(start, Math.Min(1000, keys - start)).Select(i => new KvSetItem($"key:{i:D6}", Json($"{i}"), 0))]);
            store.KvWaitingStates.Should().BeLessThanOrEqualTo(bound + 1000, "the writer folds until the bound holds after every group");
        }
        // A group is acknowledged before the writer folds after it; one more write waits for that fold.
        await kv.SetAsync(Acme, "probe", Json("0"), 0);
        store.KvWaitingStates.Should().BeLessThanOrEqualTo(bound, "the writer folds until the bound holds after every group")
            .And.BeGreaterThan(0, "the newest states wait");
        // Groups far larger than a chunk: 30 msets of 1,000 new keys queued at once.
        await Task.WhenAll(Enumerable.Range(0, 30).Select(b => kv.SetManyAsync(Acme,
            [.. Enumerable.Range(0, 1000).Select(i => new KvSetItem($"burst:{b:D2}:{i:D4}", Json("true"), 0))])));
        await kv.SetAsync(Acme, "probe", Json("1"), 0);
        store.KvWaitingStates.Should().BeLessThanOrEqualTo(bound);

        (await kv.GetManyAsync(Acme, [.. Enumerable.Range(0, 1000).Select(i => (string?)$"key:{i * (keys / 1000):D6}")]))
            .Select(l => l.Value!.Value.GetInt32()).Should().Equal(Enumerable.Range(0, 1000).Select(i => i * (keys / 1000)));
        // The same from the table: folds write 16 entries to a statement, and a key deleted before must leave kv_deleted.
        await kv.DeleteAsync(Acme, "key:000001");
        await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 40).Select(i => new KvSetItem($"key:{i:D6}", Json($"{-i}"), 0))]);
        await WaitUntilFoldedAsync(store);
        store.ClearKvCache();
        (await kv.GetManyAsync(Acme, [.. Enumerable.Range(0, 1000).Select(i => (string?)$"key:{i * (keys / 1000):D6}")]))
            .Select(l => l.Value!.Value.GetInt32()).Should().Equal(Enumerable.Range(0, 1000).Select(i => i * (keys / 1000) < 40 ? -i * (keys / 1000) : i * (keys / 1000)));
        (await kv.GetManyAsync(Acme, [.. Enumerable.Range(0, 40).Select(i => (string?)$"key:{i:D6}")])).Select(l => l.Value!.Value.GetInt32())
            .Should().Equal(Enumerable.Range(0, 40).Select(i => -i));
        (await kv.GetHistoryAsync(Acme, "key:000001")).Items.Select(h => h.Event).Should().Equal("created", "deleted", "created");
        (await ListAllAsync(kv, "key:*", 1000)).Select(i => i.Key).Should().HaveCount(keys).And.BeInAscendingOrder(StringComparer.Ordinal);
        (await kv.CleanupAsync(Acme, "key:00*")).Should().Be(10_000);
        (await kv.CleanupAsync(Acme, "key:*")).Should().Be(keys - 10_000);
        (await kv.CleanupAsync(Acme, "burst:*")).Should().Be(30_000);
        (await kv.ListAsync(Acme, "*", 1000, null)).Items.Select(i => i.Key).Should().Equal("probe");
    }

    [Fact]
    public async Task Paging_through_a_listing_writes_each_waiting_state_to_the_table_once()
    {
        // No fold starts on its own before the idle writer's: the states wait while the listing pages through them.
        await using var engine = OpenSmall(Folder("pages"), highWater: 100_000, chunk: 4096, rows: 1_000_000);
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 1000).Select(i => new KvSetItem($"page:{i:D4}", Json($"{i}"), 0))]);
        await kv.SetManyAsync(Globex, [.. Enumerable.Range(0, 100).Select(i => new KvSetItem($"page:{i:D4}", Json("0"), 0))]);

        var listed = await ListAllAsync(kv, "page:*", 50); // 20 pages: each used to write all 1,000 states again
        listed.Select(i => i.Key).Should().Equal(Enumerable.Range(0, 1000).Select(i => $"page:{i:D4}"));
        await WaitUntilFoldedAsync(store);
        store.KvStatesWrittenToTable.Should().Be(1100, "each state reaches the table once: Acme's by the listing's flush (its fold skips them), Globex's by the fold");

        // States changed after a flush are flushed again (and only they), whether or not a fold came between.
        await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 10).Select(i => new KvSetItem($"page:{i * 100:D4}", Json("-1"), 0))]);
        (await ListAllAsync(kv, "page:*", 1000)).Where(i => i.Version == 2).Select(i => i.Key).Should().Equal(Enumerable.Range(0, 10).Select(i => $"page:{i * 100:D4}"));
        (await ListAllAsync(kv, "page:*", 1000)).Should().HaveCount(1000);
        await WaitUntilFoldedAsync(store);
        store.KvStatesWrittenToTable.Should().Be(1110);

        // A flush inside a transaction that fails is undone with it: the states still count as not in the table.
        await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 5).Select(i => new KvSetItem($"page:{i:D4}", Json("-2"), 0))]);
        var failing = () => store.TransactKvAsync<int>(Acme, [], tx =>
        {
            tx.ListKvAsync(Acme, KvGlob.Parse(Acme.Tenant, "page:*"), 10, null).Result.Items.Should().HaveCount(10);
            throw new InvalidOperationException("the transaction fails after its listing");
        }, WriteDurability.Full);
        await failing.Should().ThrowAsync<InvalidOperationException>();
        await kv.SetAsync(Acme, "other", Json("1"), 0); // a commit after the failure must not count the undone writes as done
        (await ListAllAsync(kv, "page:*", 1000)).Where(i => i.Version == 2 || (i.Version == 3 && i.Key == "page:0000")).Select(i => i.Key)
            .Should().Equal(Enumerable.Range(0, 5).Select(i => $"page:{i:D4}").Concat(Enumerable.Range(1, 9).Select(i => $"page:{i * 100:D4}")));
    }

    [Fact]
    public async Task The_sweeper_keeps_a_key_whose_waiting_state_outlived_the_expiry_in_the_table()
    {
        var clock = new ManualClock(Start);
        await using var engine = EngramEngine.OpenSqlite(Folder("sweep"), clock: clock);
        var kv = engine.KeyValue;
        var store = (IKeyValueStore)engine.Store;
        await kv.SetAsync(Acme, "renewed", Json("1"), 10);
        await kv.SetAsync(Acme, "lapsed", Json("1"), 10);
        await kv.ListAsync(Acme, "*", 10, null); // listing writes the waiting states to kv_entries: both rows expire at +10 s there
        await kv.SetAsync(Acme, "renewed", Json("2"), 0); // newer state, no expiry, waiting in memory
        await kv.SetAsync(Acme, "young", Json("1"), 5); // waiting in memory only

        clock.Advance(TimeSpan.FromSeconds(11));
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(2, "the lapsed row and the young key expired; renewed lives on");
        (await kv.GetAsync(Acme, "renewed")).Value.GetInt32().Should().Be(2);
        (await kv.GetHistoryAsync(Acme, "lapsed")).Items.Select(h => h.Event).Should().Equal("created", "expired");
        (await kv.GetHistoryAsync(Acme, "young")).Items.Select(h => h.Event).Should().Equal("created", "expired");
        (await kv.ListAsync(Acme, "*", 10, null)).Items.Select(i => i.Key).Should().Equal("renewed");
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(0);
    }

    [Fact]
    public async Task A_folded_state_kept_for_readers_gives_way_to_another_process_writes()
    {
        await using var server = EngramEngine.OpenSqlite(Folder("folded"));
        var store = (SqliteMemoryStore)server.Store;
        await server.KeyValue.SetAsync(Acme, "k", Json("1"), 0);
        // The idle writer folds the state into kv_entries and keeps it for readers.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (store.KvWaitingStates > 0)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the idle writer folds within a second or two");
            await Task.Delay(50);
        }
        (await server.KeyValue.GetAsync(Acme, "k")).Value.GetInt32().Should().Be(1);
        await using (var cli = EngramEngine.OpenSqlite(Folder("folded")))
        {
            await cli.KeyValue.SetAsync(Acme, "k", Json("2"), 0);
            await cli.KeyValue.DeleteAsync(Acme, "k");
            await cli.KeyValue.SetAsync(Acme, "k", Json("3"), 0);
        }
        // The next transaction (here: the idle look) notices the other writer; the kept state must not outlive that.
        while ((await server.KeyValue.GetAsync(Acme, "k")).Value.GetInt32() != 3)
        {
            DateTime.UtcNow.Should().BeBefore(deadline.AddSeconds(10), "the server should have caught up with the other process");
            await Task.Delay(50);
        }
        (await server.KeyValue.IncrementAsync(Acme, "k", 1)).Should().Be(4);
        (await server.KeyValue.GetHistoryAsync(Acme, "k")).Items.Select(h => h.Event).Should().Equal("created", "updated", "deleted", "created", "incremented");
    }

    [Fact]
    public async Task Key_states_are_kept_up_to_a_byte_bound_and_the_rest_read_from_the_table()
    {
        const int keys = 6000;
        const long cacheBytes = 512 * 1024; // some 1,500 of the 6,000 states
        await using var engine = OpenSmall(Folder("readable"), highWater: 256, chunk: 64, rows: 1024, cacheBytes);
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        for (var start = 0; start < keys; start += 500)
        {
            await kv.SetManyAsync(Acme, [.. Enumerable.Range(start, 500).Select(i => new KvSetItem($"key:{i:D6}", Json($"{i}"), 0))]);
        }
        await WaitUntilFoldedAsync(store);
        store.KvCacheBytes.Should().BeGreaterThan(0, "states stay for readers").And.BeLessThanOrEqualTo(cacheBytes, "but only up to the bound");
        var names = Enumerable.Range(0, keys).Select(i => $"key:{i:D6}").ToList();
        var dropped = names.Where(k => !store.ReadsKvWithoutBlocking(Acme, k)).ToList();
        dropped.Count.Should().BeGreaterThan(keys / 2, "most states were dropped: the table answers for them");

        // Every key reads right, from memory or from the table; a key read from the table is kept for the next read.
        foreach (var i in Enumerable.Range(0, keys).Where(i => i % 7 == 0))
        {
            (await kv.GetAsync(Acme, names[i])).Value.GetInt32().Should().Be(i);
        }
        var reread = dropped[^1];
        (await ReadUntilKeptAsync(store, reread, async () =>
            (await kv.GetAsync(Acme, reread)).Value.GetInt32().Should().Be(int.Parse(reread[4..])))).Should().BePositive("what a reader found in the table is kept");
        (await ReadUntilKeptAsync(store, dropped[0], async () =>
            (await kv.GetManyAsync(Acme, [dropped[0], "never-written"])).Select(e => e?.Value?.GetInt32()).Should().Equal(int.Parse(dropped[0][4..]), null)))
            .Should().BePositive("mget keeps what it read too");

        // A key found missing is remembered as missing, and gives way to the write that creates it.
        (await ReadUntilKeptAsync(store, "absent", () => kv.Invoking(k => k.GetAsync(Acme, "absent")).Should().ThrowAsync<NotFoundException>()))
            .Should().BePositive("a missing key is remembered");
        await kv.Invoking(k => k.GetHistoryAsync(Acme, "absent")).Should().ThrowAsync<NotFoundException>("as for a key never cached");
        await kv.SetAsync(Acme, "absent", Json("\"here\""), 0);
        (await kv.GetAsync(Acme, "absent")).Value.GetString().Should().Be("here");
        (await kv.GetHistoryAsync(Acme, "absent")).Items.Select(h => h.Event).Should().Equal("created");
        await kv.Invoking(k => k.SetAsync(Acme, "absent", Json("1"), 0, nx: true, xx: false)).Should()
            .ThrowAsync<ConflictException>("nx sees the created key, not the remembered absence");

        // A state written again: readers see the new one at once, and the old one nowhere.
        var newest = names[^1];
        await kv.SetAsync(Acme, newest, Json("\"again\""), 0);
        store.TryGetKvFromMemory(Acme, newest, out var entry).Should().BeTrue();
        entry!.ValueJson.Should().Be("\"again\"");
        await kv.DeleteAsync(Acme, newest);
        store.TryGetKvFromMemory(Acme, newest, out entry).Should().BeTrue("a deletion is a state too");
        entry.Should().BeNull();
        (await kv.GetEntryAsync(Acme, newest)).Should().BeNull();

        // Clearing drops the clean states only: what waits to be folded stays readable.
        await kv.SetAsync(Acme, "waiting", Json("7"), 0);
        store.ClearKvCache().Should().BeGreaterThan(0);
        store.KvReadableStates.Should().Be(store.KvWaitingStates);
        store.ReadsKvWithoutBlocking(Acme, "waiting").Should().BeTrue();
        (await kv.GetAsync(Acme, "waiting")).Value.GetInt32().Should().Be(7);
        (await kv.GetAsync(Acme, names[0])).Value.GetInt32().Should().Be(0);
    }

    [Fact]
    public async Task A_drop_stops_once_it_has_freed_enough_and_keeps_the_estimate_exact()
    {
        await using var engine = OpenSmall(Folder("drop-part"), highWater: 256, chunk: 64, rows: 1024);
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        for (var start = 0; start < 4000; start += 500)
        {
            await kv.SetManyAsync(Acme, [.. Enumerable.Range(start, 500).Select(i => new KvSetItem($"key:{i:D6}", Json($"{i}"), 0))]);
        }
        await WaitUntilFoldedAsync(store);
        var states = store.KvReadableStates;
        var before = store.KvCacheBytes;
        before.Should().Be(store.RecountKvCacheBytes());
        var perState = before / states;

        // Down to half: about half the states go, the estimate follows the drop exactly, and no more is dropped than needed.
        var dropped = store.DropKvCacheTo(before / 2);
        store.KvCacheBytes.Should().Be(store.RecountKvCacheBytes(), "a drop that stops early subtracts what it freed");
        store.KvCacheBytes.Should().BeLessThanOrEqualTo(before / 2).And.BeGreaterThan(before / 2 - 2 * perState, "the walk stops once enough is free");
        dropped.Should().BeInRange(states / 2 - states / 20, states / 2 + states / 20);
        store.KvReadableStates.Should().Be(states - dropped);

        // The states dropped are read from the table and kept again; the estimate stays exact through it all.
        var names = Enumerable.Range(0, 4000).Select(i => $"key:{i:D6}").ToList();
        foreach (var i in Enumerable.Range(0, 4000).Where(i => i % 3 == 0))
        {
            (await kv.GetAsync(Acme, names[i])).Value.GetInt32().Should().Be(i);
        }
        await kv.SetAsync(Acme, names[1], Json("\"new\""), 0);
        await WaitUntilFoldedAsync(store);
        store.KvCacheBytes.Should().Be(store.RecountKvCacheBytes());
        store.ClearKvCache().Should().BePositive();
        store.KvReadableStates.Should().Be(0, "nothing waits, so every state was clean");
        store.KvCacheBytes.Should().Be(0);
    }

    [Fact]
    public async Task A_cache_exactly_at_its_bound_makes_room_for_what_readers_read()
    {
        await using var engine = OpenSmall(Folder("at-bound"), highWater: 64, chunk: 16, rows: 256);
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 200).Select(i => new KvSetItem($"key:{i:D3}", Json($"{i}"), 0))]);
        await WaitUntilFoldedAsync(store);
        store.ClearKvCache();
        for (var i = 0; i < 100; i++)
        {
            await kv.GetAsync(Acme, $"key:{i:D3}");
        }
        store.KvCacheBytes.Should().BePositive();
        store.KvCacheBytesLimit = store.KvCacheBytes; // full, to the byte
        store.ReadsKvWithoutBlocking(Acme, "key:150").Should().BeFalse();

        // The first read finds the cache full and makes room (keeping nothing: it began before the drop); the next keeps.
        (await kv.GetAsync(Acme, "key:150")).Value.GetInt32().Should().Be(150);
        (await kv.GetAsync(Acme, "key:150")).Value.GetInt32().Should().Be(150);
        store.ReadsKvWithoutBlocking(Acme, "key:150").Should().BeTrue("a cache at its bound drops as one past it does");
        store.KvCacheBytes.Should().BeLessThan(store.KvCacheBytesLimit);
    }

    [Fact]
    public async Task With_no_cache_only_the_states_waiting_to_be_folded_are_read_from_memory()
    {
        await using var engine = OpenSmall(Folder("nocache"), highWater: 64, chunk: 16, rows: 256, cacheBytes: 0);
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        await kv.SetManyAsync(Acme, [.. Enumerable.Range(0, 200).Select(i => new KvSetItem($"key:{i:D3}", Json($"{i}"), 0))]);
        await WaitUntilFoldedAsync(store);
        await kv.SetAsync(Acme, "probe", Json("0"), 0); // the group after the fold drops the folded states
        await kv.SetAsync(Acme, "waiting", Json("1"), 0);
        store.KvReadableStates.Should().Be(store.KvWaitingStates, "nothing the table holds is kept");
        store.ReadsKvWithoutBlocking(Acme, "waiting").Should().BeTrue();
        (await kv.GetAsync(Acme, "key:042")).Value.GetInt32().Should().Be(42);
        store.ReadsKvWithoutBlocking(Acme, "key:042").Should().BeFalse("a reader does not keep what it read");
        await kv.Invoking(k => k.GetAsync(Acme, "missing")).Should().ThrowAsync<NotFoundException>();
        store.ReadsKvWithoutBlocking(Acme, "missing").Should().BeTrue("a key never written is known to be missing without a read (the key filter)");
    }

    [Fact]
    public async Task A_reader_that_read_the_table_before_a_newer_state_was_folded_and_dropped_does_not_keep_its_old_one()
    {
        await using var engine = EngramEngine.OpenSqlite(Folder("race"));
        var kv = engine.KeyValue;
        var store = (SqliteMemoryStore)engine.Store;
        await kv.SetAsync(Acme, "k", Json("1"), 0);
        await WaitUntilFoldedAsync(store);
        store.ClearKvCache();
        store.ReadsKvWithoutBlocking(Acme, "k").Should().BeFalse("the table answers for k");

        // A reader reads k = 1 from the table and is held before it keeps what it read.
        using var read = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        store.AfterKvReadForTests = () =>
        {
            read.Release();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var reader = Task.Run(() => kv.GetEntryAsync(Acme, "k"));
        (await read.WaitAsync(TimeSpan.FromSeconds(30))).Should().BeTrue();
        store.AfterKvReadForTests = null;

        // Meanwhile k = 2 is written, folded into the table and dropped from memory.
        await kv.SetAsync(Acme, "k", Json("2"), 0);
        await WaitUntilFoldedAsync(store);
        store.ClearKvCache();

        var inMemory = store.ReadsKvWithoutBlocking(Acme, "k");
        release.Release();
        (await reader)!.ValueJson.Should().Be("1", "the reader answers what it read");
        var kept = store.TryGetKvFromMemory(Acme, "k", out var keptEntry) ? keptEntry?.ValueJson ?? "(missing)" : "(not kept)";
        (await kv.GetEntryAsync(Acme, "k"))!.ValueJson.Should().Be("2", $"but it did not keep it: a later reader reads 2 (before the release in memory: {inMemory}; after: {kept})");
        (await ReadUntilKeptAsync(store, "k", async () => (await kv.GetEntryAsync(Acme, "k"))!.ValueJson.Should().Be("2")))
            .Should().BePositive("a later reader keeps what it read");
        (await kv.GetEntryAsync(Acme, "k"))!.ValueJson.Should().Be("2");
    }
}
