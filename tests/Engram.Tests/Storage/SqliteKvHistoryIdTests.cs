using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

/// <summary>
/// Key-value history ids are rowids, and the write-behind's watermark says "every row up to here is
/// in kv_entries". A history id handed out twice would sit at or below the watermark, where a replay
/// after a crash never looks.
/// </summary>
public sealed class SqliteKvHistoryIdTests : IDisposable
{
    private static readonly Caller Alice = new("default", "test");

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_write_after_pruning_a_deleted_keys_history_survives_a_crash()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero));
        var folder = Path.Combine(_dir.Path, "store");
        var crashImage = Path.Combine(_dir.Path, "crash");
        Directory.CreateDirectory(crashImage);
        await using (var engine = EngramEngine.OpenSqlite(folder, clock: clock))
        {
            await engine.KeyValue.SetAsync(Alice, "old", Json("1"), 0);
            await engine.KeyValue.DeleteAsync(Alice, "old"); // the newest history row, folded when the store closes
        }

        clock.Advance(TimeSpan.FromDays(30));
        await using (var engine = EngramEngine.OpenSqlite(folder, clock: clock))
        {
            // Retention forgets the deleted key, then a new key is written and the process dies before a fold.
            await ((IKeyValueStore)engine.Store).PruneKvHistoryAsync(clock.GetUtcNow().AddDays(-7).ToUnixTimeMilliseconds(), 0, 1000);
            await engine.KeyValue.SetAsync(Alice, "new", Json("\"kept\""), 0);
            using var c = SqliteConnection.Open(Path.Combine(folder, SqliteMemoryStore.FileName), create: false);
            c.ExecuteNonQuery("VACUUM INTO ?1", Path.Combine(crashImage, SqliteMemoryStore.FileName));
        }

        await using var reopened = EngramEngine.OpenSqlite(crashImage, clock: clock);
        (await reopened.KeyValue.GetAsync(Alice, "new")).Value.GetString().Should().Be("kept");
        (await reopened.KeyValue.GetHistoryAsync(Alice, "new")).Items.Should().ContainSingle();
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
