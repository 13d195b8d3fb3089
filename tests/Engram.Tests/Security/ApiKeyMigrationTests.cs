using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>Schema 9 adds the key and audit tables to a file of schema 8 and keeps everything in it.</summary>
public sealed class ApiKeyMigrationTests
{
    [Fact]
    public async Task A_version_8_file_keeps_its_memories_and_key_value_state_and_gains_keys_and_the_audit_log()
    {
        using var dir = new TempDirectory();
        var alice = new Caller("default", "test");
        string id;
        await using (var old = new EngramEngine(SqliteMemoryStore.OpenAtSchemaVersion(dir.Path, 8), new MemoryLimits(), new SearchOptions(), BuiltinEmbeddingProvider.Default))
        {
            id = (await old.Memories.CreateAsync(alice, new NewMemory { Content = "kept across the migration", UserId = "alice" })).Memory.Id;
            await old.KeyValue.SetAsync(alice, "state", System.Text.Json.JsonDocument.Parse("{\"n\":1}").RootElement, null);
        }
        using (var c = SqliteConnection.Open(Path.Combine(dir.Path, SqliteMemoryStore.FileName), create: false))
        {
            SqliteSchema.CurrentVersion(c).Should().Be(8);
            c.ScalarInt64("SELECT count(*) FROM sqlite_schema WHERE name = 'api_keys'").Should().Be(0);
        }

        await using (var engine = EngramEngine.OpenSqlite(dir.Path))
        {
            var store = (SqliteMemoryStore)engine.Store;
            (await engine.Memories.GetAsync(alice, id)).Content.Should().Be("kept across the migration");
            (await engine.KeyValue.GetAsync(alice, "state")).Value.GetRawText().Should().Be("{\"n\":1}");
            (await store.GetApiKeyStateAsync()).Should().Be(new ApiKeyState(0, 0));
            await using var trail = new AuditTrail(store);
            var keys = new ApiKeyService(store, trail);
            var created = await keys.CreateAsync(new NewApiKey("default", Role.Admin), "test");
            (await keys.AuthenticateAsync(created.Secret))!.Id.Should().Be(created.Key.Id);
            (await store.ReadAuditAsync(new AuditQuery())).Items.Should().ContainSingle(e => e.Action == AuditActions.KeyCreate);
        }
        using (var c = SqliteConnection.Open(Path.Combine(dir.Path, SqliteMemoryStore.FileName), create: false))
        {
            SqliteSchema.CurrentVersion(c).Should().Be(SqliteSchema.LatestVersion);
            c.ScalarText("PRAGMA integrity_check").Should().Be("ok");
            c.ScalarInt64("SELECT count(*) FROM pragma_table_list WHERE name IN ('api_keys', 'audit_log') AND strict = 1").Should().Be(2);
        }
    }
}
