using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

public sealed class SqliteMemoryStoreTests : IDisposable
{
    private static readonly Caller Alice = new("default", "test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static MemoryService Service(IMemoryStore store) => new(store, new MemoryLimits(), TimeProvider.System);

    [Fact]
    public async Task Open_CreatesSchemaVersionAndReopensWithData()
    {
        string id;
        await using (var store = SqliteMemoryStore.Open(_dir.Path))
        {
            id = (await Service(store).CreateAsync(Alice, new NewMemory { Content = "kept" })).Memory.Id;
        }
        File.Exists(Path.Combine(_dir.Path, SqliteMemoryStore.FileName)).Should().BeTrue();
        var wal = new FileInfo(Path.Combine(_dir.Path, SqliteMemoryStore.FileName + "-wal"));
        (wal.Exists ? wal.Length : 0).Should().Be(0, "a clean close checkpoints the WAL into the main file");

        await using var reopened = SqliteMemoryStore.Open(_dir.Path);
        (await reopened.GetAsync(Alice, id))!.Content.Should().Be("kept");
        using var c = SqliteConnection.Open(reopened.DatabasePath);
        c.ScalarInt64("SELECT MAX(version) FROM schema_version").Should().Be(SqliteSchema.LatestVersion);
    }

    [Fact]
    public async Task Open_RefusesASchemaNewerThanTheBinary()
    {
        await (await Task.FromResult(SqliteMemoryStore.Open(_dir.Path))).DisposeAsync();
        using (var c = SqliteConnection.Open(Path.Combine(_dir.Path, SqliteMemoryStore.FileName)))
        {
            c.ExecuteNonQuery("INSERT INTO schema_version(version, applied_at) VALUES (?1, 0)", SqliteSchema.LatestVersion + 5);
        }
        var open = () => SqliteMemoryStore.Open(_dir.Path);
        open.Should().Throw<StoreException>().WithMessage($"*schema version {SqliteSchema.LatestVersion + 5}*newer than this engram*");
    }

    [Fact]
    public async Task Open_MigratesADatabaseOfThePreviousVersion_KeepingItsMemories()
    {
        var path = Path.Combine(_dir.Path, SqliteMemoryStore.FileName);
        using (var old = SqliteConnection.Open(path))
        {
            // A database as the previous release left it: one memory with a tag, no entities column yet.
            SqliteSchema.Migrate(old, 0, upTo: 5); // 6 added the entities
            old.ExecuteNonQuery(
                "INSERT INTO memories (id, tenant, content, content_hash, type, tier, importance, tags, metadata, created_at, updated_at, version, seq) " +
                "VALUES (?1, 'default', 'from before', 'h', 'fact', 'long_term', 0.5, '[\"old\"]', '{}', 0, 0, 1, 1)", "01J00000000000000000000001");
            old.ExecuteNonQuery("INSERT INTO memory_tags(rid, tag) VALUES (last_insert_rowid(), 'old')");
            old.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES ('default', 'memory', ?1, 'upsert', 0)", "01J00000000000000000000001");
        }

        await using var store = SqliteMemoryStore.Open(_dir.Path);
        using (var c = SqliteConnection.Open(store.DatabasePath))
        {
            SqliteSchema.CurrentVersion(c).Should().Be(SqliteSchema.LatestVersion);
        }
        var migrated = (await store.GetAsync(Alice, "01J00000000000000000000001"))!;
        migrated.Content.Should().Be("from before");
        migrated.Tags.Should().Equal("old");
        migrated.Entities.Should().BeEmpty("rows from before name no entities");
        (await store.ListAsync(Alice, new MemoryFilter { Tags = ["old"] }, 10, null)).Items.Should().ContainSingle();

        var service = Service(store);
        await service.UpdateAsync(Alice, migrated.Id, new MemoryPatch { Entities = new(["Ada"]) });
        (await store.ListAsync(Alice, new MemoryFilter { Entity = "ada" }, 10, null)).Items.Single().Id.Should().Be(migrated.Id);
        var fresh = await service.CreateAsync(Alice, new NewMemory { Content = "after", Entities = ["ADA"] });
        (await store.ListAsync(Alice, new MemoryFilter { Entity = "Ada" }, 10, null)).Items.Select(m => m.Id).Should().Equal(fresh.Memory.Id, migrated.Id);
    }

    [Fact]
    public async Task ChangeLog_HasOneEntryPerChangeInOrder()
    {
        await using var store = SqliteMemoryStore.Open(_dir.Path);
        var service = Service(store);
        var a = await service.CreateAsync(Alice, new NewMemory { Content = "a" });
        var b = await service.CreateAsync(Alice, new NewMemory { Content = "b" });
        var u = await service.UpdateAsync(Alice, a.Memory.Id, new MemoryPatch { Importance = 0.9 });
        var d = await service.DeleteAsync(Alice, b.Memory.Id);

        var changes = await store.ReadChangesAsync(0, 100);
        changes.Select(c => (c.Seq, c.EntityId, c.Op)).Should().Equal(
            (a.Seq, a.Memory.Id, "upsert"), (b.Seq, b.Memory.Id, "upsert"), (u.Seq, a.Memory.Id, "upsert"), (d, b.Memory.Id, "delete"));
        (await store.ReadChangesAsync(u.Seq, 100)).Should().ContainSingle().Which.Seq.Should().Be(d);
        (await store.GetLastSeqAsync()).Should().Be(d);
    }

    [Fact]
    public async Task ChangeLog_ReadByKind_SkipsOtherKinds_AndSaysHowFarItRead()
    {
        await using var engine = Engram.Core.EngramEngine.OpenSqlite(_dir.Path);
        var store = engine.Store;
        var value = System.Text.Json.JsonDocument.Parse("1").RootElement;
        var a = await engine.Memories.CreateAsync(Alice, new NewMemory { Content = "first memory" });
        for (var i = 0; i < 3; i++)
        {
            await engine.KeyValue.SetAsync(Alice, $"k{i}", value, 0);
        }
        var b = await engine.Memories.CreateAsync(Alice, new NewMemory { Content = "second memory" });
        await engine.KeyValue.SetAsync(Alice, "k9", value, 0);
        var last = await store.GetLastSeqAsync();
        last.Should().Be(b.Seq + 1);

        var page = await store.ReadChangesAsync(0, 100, ChangeRecord.MemoryEntity);
        page.Changes.Select(c => c.Seq).Should().Equal(a.Seq, b.Seq);
        page.ReadThrough.Should().Be(last, "the key-value entries after the last memory were read past too");
        var full = await store.ReadChangesAsync(0, 1, ChangeRecord.MemoryEntity);
        full.Changes.Should().ContainSingle().Which.Seq.Should().Be(a.Seq);
        full.ReadThrough.Should().Be(a.Seq, "a full page may have more of its kind right after it");
        var none = await store.ReadChangesAsync(last, 100, ChangeRecord.MemoryEntity);
        none.Changes.Should().BeEmpty();
        none.ReadThrough.Should().Be(last);

        await engine.Follower.CatchUpAsync();
        engine.Index.AppliedSeq.Should().Be(last, "the index follower moves past key-value entries");
        engine.Index.Count.Should().Be(2);
    }

    [Fact]
    public async Task TwoStoresOnOneFile_WriteConcurrentlyWithoutLockErrors()
    {
        // Two stores = two independent writer connections, as when the CLI writes next to a running server.
        await using var first = SqliteMemoryStore.Open(_dir.Path);
        await using var second = SqliteMemoryStore.Open(_dir.Path);
        var writes = Enumerable.Range(0, 400).Select(i =>
            Service(i % 2 == 0 ? first : second).CreateAsync(Alice, new NewMemory { Content = $"concurrent {i}" }));
        var results = await Task.WhenAll(writes);
        results.Select(r => r.Seq).Should().OnlyHaveUniqueItems();
        (await first.GetStatsAsync(Alice)).Total.Should().Be(400);
        (await second.GetStatsAsync(Alice)).Total.Should().Be(400);
    }

    [Fact]
    public async Task FailingWrite_DoesNotTakeItsGroupDown()
    {
        await using var store = SqliteMemoryStore.Open(_dir.Path);
        var service = Service(store);
        var target = (await service.CreateAsync(Alice, new NewMemory { Content = "target" })).Memory;
        var tasks = new List<Task>();
        for (var i = 0; i < 50; i++)
        {
            tasks.Add(service.CreateAsync(Alice, new NewMemory { Content = $"neighbour {i}" }));
            // valid_to before valid_from fails inside the writer, after the savepoint was opened.
            tasks.Add(service.UpdateAsync(Alice, target.Id, new MemoryPatch { ValidFrom = DateTimeOffset.UtcNow, ValidTo = DateTimeOffset.UtcNow.AddDays(-1) }));
        }
        await Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        tasks.Where((_, i) => i % 2 == 1).Should().OnlyContain(t => t.IsFaulted && t.Exception!.InnerException is ValidationException);
        tasks.Where((_, i) => i % 2 == 0).Should().OnlyContain(t => t.IsCompletedSuccessfully);
        (await store.GetStatsAsync(Alice)).Total.Should().Be(51);
        (await store.GetAsync(Alice, target.Id))!.Version.Should().Be(1);
    }

    [Fact]
    public async Task Tenants_AreIsolatedOnEveryPath()
    {
        await using var store = SqliteMemoryStore.Open(_dir.Path);
        var service = Service(store);
        var other = new Caller("other-tenant", "test");
        var mine = (await service.CreateAsync(Alice, new NewMemory { Content = "secret", UserId = "u" })).Memory;

        (await store.GetAsync(other, mine.Id)).Should().BeNull();
        (await store.ListAsync(other, MemoryFilter.None, 100, null)).Items.Should().BeEmpty();
        (await store.GetHistoryAsync(other, mine.Id)).Should().BeEmpty();
        (await store.GetStatsAsync(other)).Total.Should().Be(0);
        (await store.DeleteAsync(other, mine.Id)).Should().BeNull();
        (await store.DeleteManyAsync(other, new MemoryFilter { UserId = "u" })).Deleted.Should().Be(0);
        await service.UpdateAsync(Alice, mine.Id, new MemoryPatch { Entities = new(["Mallory"]) });
        (await store.ListAsync(other, new MemoryFilter { Entity = "Mallory" }, 100, null)).Items.Should().BeEmpty();
        (await store.ListAsync(Alice, new MemoryFilter { Entity = "Mallory" }, 100, null)).Items.Should().ContainSingle();
        var update = () => service.UpdateAsync(other, mine.Id, new MemoryPatch { Content = "hijacked" });
        await update.Should().ThrowAsync<NotFoundException>();
        // The same content in another tenant is not a duplicate.
        (await service.CreateAsync(other, new NewMemory { Content = "secret", UserId = "u" })).Duplicate.Should().BeFalse();
        (await store.GetAsync(Alice, mine.Id))!.Content.Should().Be("secret");
    }

    [Fact]
    public async Task ConcurrentIdenticalCreates_StoreExactlyOne()
    {
        await using var store = SqliteMemoryStore.Open(_dir.Path);
        var service = Service(store);
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => service.CreateAsync(Alice, new NewMemory { Content = "same" })));
        results.Count(r => !r.Duplicate).Should().Be(1);
        results.Select(r => r.Memory.Id).Distinct().Should().ContainSingle();
    }
}
