using System.Net;
using System.Text.Json;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>
/// <c>POST /v1/kv/cleanup</c> is bounded per call (Engram:KeyValue:CleanupBudgetMs): a budget of 0
/// deletes one chunk of 500 per call, so 1,250 matching keys take three calls, continued with the cursor.
/// </summary>
public class KvCleanupTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private const int Matching = 1_250;

    private EngramServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await EngramServer.StartAsync(Backend, configure: o => o.KeyValue.CleanupBudgetMs = 0);
        // job:0000… match "job:*"; jobs:1, job and keep:* sit around and inside the pattern's key range but do not match.
        var keys = Enumerable.Range(0, Matching).Select(i => $"job:{i:D4}").Concat(["jobs:1", "job", "keep:1", "keep:2", "jo"]).ToList();
        foreach (var batch in keys.Chunk(1_000))
        {
            var items = batch.Select(k => $$"""{"key":"{{k}}","value":1,"ttl_seconds":0}""");
            (await _server.PostJsonAsync("/v1/kv/mset", $$"""{"items":[{{string.Join(',', items)}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        }
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task OneCallDeletesAChunk_AndTheCursorContinuesToTheEnd_LeavingEveryOtherKey()
    {
        var first = await CleanupAsync("""{"pattern":"job:*"}""");
        first.GetProperty("deleted").GetInt32().Should().Be(500);
        first.GetProperty("done").GetBoolean().Should().BeFalse();
        var cursor = first.GetProperty("next_cursor").GetString();
        cursor.Should().NotBeNullOrEmpty();

        var total = 500;
        var calls = 1;
        while (cursor is not null)
        {
            var step = await CleanupAsync(JsonSerializer.Serialize(new { pattern = "job:*", cursor }));
            total += step.GetProperty("deleted").GetInt32();
            calls++;
            cursor = step.GetProperty("done").GetBoolean() ? null : step.GetProperty("next_cursor").GetString();
            calls.Should().BeLessThan(10, "each call deletes a chunk");
        }
        total.Should().Be(Matching);
        calls.Should().Be(3);

        (await RemainingKeysAsync()).Should().Equal("jo", "job", "jobs:1", "keep:1", "keep:2");
    }

    [Fact]
    public async Task ACleanupThatFinishes_SaysDone_WithoutACursor()
    {
        var done = await CleanupAsync("""{"pattern":"keep:*"}""");
        done.GetProperty("deleted").GetInt32().Should().Be(2);
        done.GetProperty("done").GetBoolean().Should().BeTrue();
        done.GetProperty("next_cursor").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task ACursorThatIsNotOneTheServerGave_IsRefused()
    {
        var response = await _server.PostJsonAsync("/v1/kv/cleanup", """{"pattern":"job:*","cursor":"%%%"}""");
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "cursor");
    }

    [Fact]
    public async Task TheCliLoopsUntilDone_SoOneCommandDeletesEveryMatchingKey()
    {
        var result = await CliProcess.RunAsync(["kv", "cleanup", "job:*", "--json", "--server", _server.BaseAddress.ToString()]);
        result.ExitCode.Should().Be(0, result.ToString());
        var body = result.Json();
        body.GetProperty("deleted").GetInt32().Should().Be(Matching);
        body.GetProperty("done").GetBoolean().Should().BeTrue();
        (await RemainingKeysAsync()).Should().Equal("jo", "job", "jobs:1", "keep:1", "keep:2");
    }

    private async Task<JsonElement> CleanupAsync(string body)
    {
        var response = await _server.PostJsonAsync("/v1/kv/cleanup", body);
        var json = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, json.ToString());
        return json;
    }

    private async Task<List<string>> RemainingKeysAsync()
    {
        var page = await (await _server.Client.GetAsync("/v1/kv?pattern=*&limit=1000")).JsonAsync();
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()!)];
    }
}
