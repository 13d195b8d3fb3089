using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// A copy of a PostgreSQL database (CREATE DATABASE ... TEMPLATE, a dump restored elsewhere) is a store of its own: an
/// instance's index snapshot of the original is never loaded for the copy, though both start from the same rows.
/// </summary>
public sealed class PostgresStoreIdentityTests
{
    [Fact]
    public async Task A_copied_database_has_its_own_store_id_and_ignores_the_originals_snapshot()
    {
        var postgres = await PostgresServer.GetAsync();
        var original = await postgres.CreateDatabaseAsync();
        using var folder = new TempDirectory();
        var snapshot = Path.Combine(folder.Path, "engram.index");
        void UseSnapshot(Engram.Server.EngramServerOptions o) => o.IndexSnapshotPath = snapshot;

        await using (var server = await EngramServer.StartAsync(postgres.Url(original), UseSnapshot))
        {
            await server.CreateAsync(new { content = "shared first memory about harbours" });
        }
        NpgsqlConnection.ClearAllPools();
        var copy = $"{original}_copy";
        await using (var connection = new NpgsqlConnection(postgres.ConnectionString("postgres") + ";Pooling=false"))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {copy} TEMPLATE {original}", connection);
            await command.ExecuteNonQueryAsync();
        }

        // The two diverge at the same change-log position: the original's snapshot then reflects a memory the copy never had.
        await using (var server = await EngramServer.StartAsync(postgres.Url(original), UseSnapshot))
        {
            await server.CreateAsync(new { content = "only in the original: lighthouses" });
        }
        File.Exists(snapshot).Should().BeTrue();
        await using (var store = PostgresMemoryStore.Open(postgres.Url(copy)))
        await using (var first = PostgresMemoryStore.Open(postgres.Url(original)))
        {
            store.StoreId.Should().NotBe(first.StoreId);
        }

        await using var onCopy = await EngramServer.StartAsync(postgres.Url(copy), UseSnapshot);
        await onCopy.CreateAsync(new { content = "only in the copy: windmills" });
        (await onCopy.SearchAsync(new { query = "lighthouses" })).Should().BeEmpty("the original's snapshot must not be loaded for the copy");
        (await onCopy.SearchAsync(new { query = "windmills" })).Should().ContainSingle();
        (await onCopy.SearchAsync(new { query = "harbours" })).Should().ContainSingle();
    }
}
