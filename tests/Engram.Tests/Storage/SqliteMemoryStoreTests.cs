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
}
