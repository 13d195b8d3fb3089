using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Durability;

public sealed class GracefulShutdownTests
{
    [Fact]
    public async Task SigTerm_FinishesTheInFlightRequest_ExitsZero_AndClosesTheStoreCleanly()
    {
        using var data = new TempDirectory();
        await using var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(30));
        using var http = new HttpClient { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

        // A big batch is still being written when the signal arrives.
        var items = Enumerable.Range(0, 1000).Select(i => new { content = $"graceful shutdown memory {i} about topic {i % 37}" }).ToArray();
        var inFlight = http.PostAsJsonAsync("/v1/memories/batch", new { items }, EngramJson.Options);
        await Task.Delay(30);
        child.Terminate();

        var response = await inFlight;
        response.StatusCode.Should().Be(HttpStatusCode.OK, "a request in flight at SIGTERM is finished, not dropped");
        var results = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("results").EnumerateArray().ToList();
        results.Should().HaveCount(1000).And.OnlyContain(r => r.GetProperty("status").GetString() == "created");

        (await child.WaitForExitAsync(TimeSpan.FromSeconds(20))).Should().Be(0, child.RecentOutput);

        var wal = new FileInfo(Path.Combine(data.Path, SqliteMemoryStore.FileName + "-wal"));
        (wal.Exists ? wal.Length : 0).Should().Be(0, "a clean close checkpoints the WAL into the database file");
        await using var store = SqliteMemoryStore.Open(data.Path);
        (await store.IntegrityCheckAsync()).Should().Be("ok");
        var ids = results.Select(r => r.GetProperty("id").GetString()!).ToList();
        (await store.GetManyAsync(Caller.Default("test"), ids)).Should().HaveCount(1000);
    }
}
