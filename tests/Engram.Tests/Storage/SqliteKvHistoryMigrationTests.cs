using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

/// <summary>The SQLite migration (schema 5) that linked key-value history written before the chain existed.</summary>
public sealed class SqliteKvHistoryMigrationTests : IDisposable
{
    private static readonly Caller Acme = new("acme", "test");
    private static readonly Caller Globex = new("globex", "test");
    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    [Fact]
    public async Task ADatabaseFromBeforeTheChain_IsLinkedByTheMigration()
    {
        // Schema 4 as an older engram left it: history found through an index, no chain columns.
        var path = Path.Combine(_data.Path, SqliteMemoryStore.FileName);
        using (var old = SqliteConnection.Open(path))
        {
            SqliteSchema.Migrate(old, 0, upTo: 4);
            void History(long hid, string tenant, string key, string ev, long version, string? value) =>
                old.ExecuteNonQuery("INSERT INTO kv_history(hid, tenant, key, seq, event, actor, at, version, value, expires_at) VALUES (?1, ?2, ?3, ?1, ?4, 'old', 1000, ?5, ?6, NULL)",
                    hid, tenant, key, ev, version, value);
            History(1, "acme", "live", "created", 1, "1");
            History(2, "acme", "dead", "created", 1, "\"a\"");
            History(3, "globex", "live", "created", 1, "\"g\"");
            History(4, "acme", "live", "updated", 2, "2");
            History(5, "acme", "dead", "deleted", 1, null);
            old.ExecuteNonQuery("INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at) VALUES ('acme', 'live', '2', NULL, 2, 4, 1000, 1000)");
            old.ExecuteNonQuery("INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at) VALUES ('globex', 'live', '\"g\"', NULL, 1, 3, 1000, 1000)");
        }

        await using var engine = EngramEngine.OpenSqlite(_data.Path);
        var kv = engine.KeyValue;
        (await kv.GetHistoryAsync(Acme, "live")).Items.Select(h => (h.Event, h.Value!.Value.GetInt64())).Should().Equal(("created", 1L), ("updated", 2L));
        (await kv.GetHistoryAsync(Acme, "dead")).Items.Select(h => h.Event).Should().Equal("created", "deleted");
        (await kv.GetHistoryAsync(Globex, "live")).Items.Should().ContainSingle();

        // New writes continue the migrated chains, including the deleted key's.
        await kv.SetAsync(Acme, "live", Json("3"), 0);
        await kv.SetAsync(Acme, "dead", Json("\"b\""), 0);
        (await kv.GetHistoryAsync(Acme, "live")).Items.Select(h => h.Version).Should().Equal(1, 2, 3);
        (await kv.GetHistoryAsync(Acme, "dead")).Items.Select(h => h.Event).Should().Equal("created", "deleted", "created");
    }
}
