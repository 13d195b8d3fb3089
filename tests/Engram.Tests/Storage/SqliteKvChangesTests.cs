using System.Globalization;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

/// <summary>
/// From schema 14 a key-value change is its history row, numbered from the change log's sequence, and the change log's
/// readers merge the two (SqliteMemoryStore.Changes.cs): the same entries in the same order as when each change was a
/// changelog row, across the migration, and pruned with the history instead of kept for ever.
/// </summary>
public sealed class SqliteKvChangesTests : IDisposable
{
    private const int SchemaBefore = 13;
    private static readonly Caller Acme = new("acme", "test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    private long RawScalar(string sql)
    {
        using var c = SqliteConnection.Open(Path.Combine(_dir.Path, SqliteMemoryStore.FileName), readOnly: true, create: false);
        return c.ScalarInt64(sql) ?? 0;
    }

    [Fact]
    public async Task KeyValueChanges_AreReadFromTheHistory_InOneSeqOrderWithMemories()
    {
        await using var engine = EngramEngine.OpenSqlite(_dir.Path);
        var kv = engine.KeyValue;
        await kv.SetAsync(Acme, "k", Json("1"), 0);
        var memory = await engine.Memories.CreateAsync(Acme, new NewMemory { Content = "a memory between key-value writes" });
        await kv.SetManyAsync(Acme, [new KvSetItem("a", Json("1"), null), new KvSetItem("b", Json("2"), null), new KvSetItem("c", Json("3"), null)]);
        await kv.ExpireAsync(Acme, "a", 600);
        await kv.DeleteAsync(Acme, "b");
        await kv.IncrementAsync(Acme, "n", 5);

        var changes = await engine.Store.ReadChangesAsync(0, 100);
        changes.Select(c => (c.Entity, c.EntityId, c.Op)).Should().Equal(
            ("kv", "k", "upsert"), ("memory", memory.Memory.Id, "upsert"), ("kv", "a", "upsert"), ("kv", "b", "upsert"), ("kv", "c", "upsert"),
            ("kv", "a", "upsert"), ("kv", "b", "delete"), ("kv", "n", "upsert"));
        changes.Select(c => c.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        changes.Should().OnlyContain(c => c.Tenant == "acme");
        (await engine.Store.GetLastSeqAsync()).Should().Be(changes[^1].Seq);
        RawScalar("SELECT count(*) FROM changelog WHERE entity = 'kv'").Should().Be(0, "a key-value change writes its history row only");

        // A key's history carries the seqs the log reports.
        var history = await kv.GetHistoryAsync(Acme, "a");
        history.Items.Select(h => h.Seq).Should().Equal(changes.Where(c => c.EntityId == "a").Select(c => c.Seq));

        // Paging: from the memory's seq, two at a time; the entity filter sees the key-value entries alone.
        var afterMemory = memory.Seq;
        (await engine.Store.ReadChangesAsync(afterMemory, 2)).Select(c => c.EntityId).Should().Equal("a", "b");
        var kvPage = await engine.Store.ReadChangesAsync(0, 100, ChangeRecord.KeyValueEntity);
        kvPage.Changes.Select(c => c.Seq).Should().Equal(changes.Where(c => c.Entity == "kv").Select(c => c.Seq));
        kvPage.ReadThrough.Should().Be(changes[^1].Seq);
        var memoryPage = await engine.Store.ReadChangesAsync(0, 100, ChangeRecord.MemoryEntity);
        memoryPage.Changes.Should().ContainSingle().Which.EntityId.Should().Be(memory.Memory.Id);
        memoryPage.ReadThrough.Should().Be(changes[^1].Seq, "a follower of memories moves past the key-value seqs too");
        var kvTwo = await engine.Store.ReadChangesAsync(0, 2, ChangeRecord.KeyValueEntity);
        kvTwo.Changes.Select(c => c.EntityId).Should().Equal("k", "a");
        kvTwo.ReadThrough.Should().Be(kvTwo.Changes[^1].Seq);
    }

    [Fact]
    public async Task AFileOfSchema13_KeepsItsLoggedChanges_AndContinuesAboveThem()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
        await using (var old = new EngramEngine(SqliteMemoryStore.OpenAtSchemaVersion(_dir.Path, SchemaBefore, clock), new MemoryLimits(), new SearchOptions(),
            BuiltinEmbeddingProvider.Default, clock))
        {
            await old.KeyValue.SetAsync(Acme, "x", Json("1"), 0);
            await old.KeyValue.SetAsync(Acme, "x", Json("2"), 0);
            await old.Memories.CreateAsync(Acme, new NewMemory { Content = "written before the migration" });
        }
        RawScalar("SELECT count(*) FROM changelog WHERE entity = 'kv'").Should().Be(2, "an older file logs key-value changes as rows");

        await using var engine = EngramEngine.OpenSqlite(_dir.Path, clock: clock);
        RawScalar("SELECT max(version) FROM schema_version").Should().Be(SqliteSchema.LatestVersion);
        var before = await engine.Store.GetLastSeqAsync();
        var set = await engine.KeyValue.SetManyAsync(Acme, [new KvSetItem("x", Json("3"), null), new KvSetItem("y", Json("1"), null)]);
        set.Should().HaveCount(2);

        var changes = await engine.Store.ReadChangesAsync(0, 100);
        changes.Select(c => (c.Entity, c.EntityId)).Should().Equal(("kv", "x"), ("kv", "x"), ("memory", changes[2].EntityId), ("kv", "x"), ("kv", "y"));
        changes.Select(c => c.Seq).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        changes[3].Seq.Should().BeGreaterThan(before);
        (await engine.KeyValue.GetHistoryAsync(Acme, "x")).Items.Select(h => h.Value!.Value.GetInt64()).Should().Equal(1, 2, 3);
        (await engine.Store.ReadChangesAsync(0, 100, ChangeRecord.KeyValueEntity)).Changes.Should().HaveCount(4, "each change once, old or new");

        // The rows an older engram logged go by the history's retention too; the memory's entry stays.
        clock.Advance(TimeSpan.FromDays(8));
        await engine.KeyValue.SetAsync(Acme, "x", Json("4"), 0);
        var store = (IKeyValueStore)engine.Store;
        (await store.PruneKvHistoryAsync(clock.GetUtcNow().AddDays(-7).ToUnixTimeMilliseconds(), 0, 1000)).More.Should().BeFalse();
        RawScalar("SELECT count(*) FROM changelog WHERE entity = 'kv'").Should().Be(0);
        var kept = await engine.Store.ReadChangesAsync(0, 100);
        kept.Select(c => (c.Entity, c.EntityId)).Should().Equal(("memory", changes[2].EntityId), ("kv", "y"), ("kv", "x"));
        (await engine.KeyValue.GetHistoryAsync(Acme, "x")).Items.Select(h => h.Value!.Value.GetInt64()).Should().Equal(4);
    }

    [Fact]
    public async Task KeyValueChanges_ArePrunedWithTheHistory_NotKeptForEver()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
        await using var engine = EngramEngine.OpenSqlite(_dir.Path, clock: clock);
        for (var i = 0; i < 50; i++)
        {
            await engine.KeyValue.SetAsync(Acme, "busy", Json(i.ToString(CultureInfo.InvariantCulture)), 0);
        }
        clock.Advance(TimeSpan.FromDays(8));
        var last = await engine.KeyValue.SetAsync(Acme, "busy", Json("50"), 0);
        last.Version.Should().Be(51);

        var store = (IKeyValueStore)engine.Store;
        (await store.PruneKvHistoryAsync(clock.GetUtcNow().AddDays(-7).ToUnixTimeMilliseconds(), 0, 1000)).Deleted.Should().Be(50);
        var changes = await engine.Store.ReadChangesAsync(0, 100);
        changes.Should().ContainSingle("the log keeps what the history keeps").Which.Seq.Should().Be(await engine.Store.GetLastSeqAsync());
        RawScalar("SELECT count(*) FROM changelog").Should().Be(0);

        // The sequence never goes back, whatever was pruned.
        var after = await engine.KeyValue.SetAsync(Acme, "busy", Json("51"), 0);
        (await engine.Store.ReadChangesAsync(changes[0].Seq, 10)).Should().ContainSingle().Which.Seq.Should().Be(changes[0].Seq + 1);
        after.Version.Should().Be(52);
    }
}
