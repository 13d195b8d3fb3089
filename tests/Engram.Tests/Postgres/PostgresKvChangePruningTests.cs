using System.Globalization;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

/// <summary>
/// On PostgreSQL a key-value write logs a change-log entry beside its history row; pruning the history takes the entry
/// with it, so key-value churn does not grow the log for ever (as on SQLite, where the history row is the entry), and the
/// integrity check tells those gaps from lost entries.
/// </summary>
public sealed class PostgresKvChangePruningTests
{
    private static readonly Caller Acme = new("acme", "test");

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    [Fact]
    public async Task Pruned_history_takes_its_log_entries_and_the_integrity_check_stays_clean()
    {
        using var location = await StoreLocation.CreateAsync(Backend.Postgres);
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
        await using var engine = EngramEngine.Open(location.Value, clock: clock);
        var memory = await engine.Memories.CreateAsync(Acme, new NewMemory { Content = "a memory whose log entry stays" });
        for (var i = 0; i < 20; i++)
        {
            await engine.KeyValue.SetAsync(Acme, "busy", Json(i.ToString(CultureInfo.InvariantCulture)), 0);
        }
        await engine.KeyValue.SetAsync(Acme, "gone", Json("1"), 0);
        await engine.KeyValue.DeleteAsync(Acme, "gone");
        clock.Advance(TimeSpan.FromDays(8));
        await engine.KeyValue.SetAsync(Acme, "busy", Json("20"), 0);
        (await engine.Store.ReadChangesAsync(0, 1000)).Should().HaveCount(24);

        var store = (PostgresMemoryStore)engine.Store;
        (await ((IKeyValueStore)store).PruneKvHistoryAsync(clock.GetUtcNow().AddDays(-7).ToUnixTimeMilliseconds(), 0, 1000)).Deleted.Should().Be(22);
        var changes = await engine.Store.ReadChangesAsync(0, 1000);
        changes.Select(c => (c.Entity, c.EntityId)).Should().Equal(("memory", memory.Memory.Id), ("kv", "busy"));
        changes[^1].Seq.Should().Be(await engine.Store.GetLastSeqAsync());
        var (_, problems) = await store.CheckIntegrityAsync();
        problems.Should().BeEmpty("gaps of pruned key-value entries are not lost entries");

        // A gap above the pruned part is still found.
        await engine.KeyValue.SetAsync(Acme, "later", Json("1"), 0);
        await engine.KeyValue.SetAsync(Acme, "later", Json("2"), 0);
        var lost = (await engine.Store.ReadChangesAsync(changes[^1].Seq, 10))[0].Seq;
        await using (var connection = new Npgsql.NpgsqlConnection(PostgresUrl.ToConnectionString(location.Value) + ";Pooling=false"))
        {
            await connection.OpenAsync();
            await using var delete = new Npgsql.NpgsqlCommand($"DELETE FROM changelog WHERE seq = {lost}", connection);
            (await delete.ExecuteNonQueryAsync()).Should().Be(1);
        }
        (await store.CheckIntegrityAsync()).Problems.Should().ContainSingle().Which.Should().Contain("1 entry missing");
    }
}
