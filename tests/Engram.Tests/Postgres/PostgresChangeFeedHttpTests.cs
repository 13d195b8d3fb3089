using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

/// <summary>
/// The server's side of the commit listener: a write another instance makes on the shared database is found
/// by this server's search, and /v1/stats tells an admin whether the listener is up (PostgreSQL only: a
/// SQLite server has no change feed and says nothing about one).
/// </summary>
public sealed class PostgresChangeFeedHttpTests
{
    [Fact]
    public async Task Stats_show_the_listener_up_and_a_write_of_another_instance_becomes_searchable_here()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var server = await EngramServer.StartAsync(url);
        await using var otherInstance = PostgresMemoryStore.Open(url);

        var feed = await WaitForAsync(server, f => f.GetProperty("listening").GetBoolean(), "the listener connects");
        feed.GetProperty("connects").GetInt64().Should().Be(1);
        feed.GetProperty("down_reason").ValueKind.Should().Be(JsonValueKind.Null, "no reason while listening");
        feed.GetProperty("down_since").ValueKind.Should().Be(JsonValueKind.Null);

        var memory = TestMemories.New("the zebra quartet rehearses on thursdays");
        var created = await otherInstance.CreateAsync(new Caller("default", "other-instance"), memory, DuplicatePolicy.Allow);
        await WaitForAsync(server, f => f.GetProperty("notifications").GetInt64() >= 1, "the other instance's commit is heard");

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            using var response = await server.Client.PostAsJsonAsync("/v1/search", new { query = "zebra quartet", k = 5 });
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            if (body.RootElement.GetProperty("results").EnumerateArray().Any(r => r.GetProperty("id").GetString() == memory.Id))
            {
                break;
            }
            deadline.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(30), $"seq {created.Seq} written by another instance reaches this server's index");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_sqlite_server_has_no_change_feed_in_its_stats()
    {
        await using var server = await EngramServer.StartAsync();
        using var stats = JsonDocument.Parse(await server.Client.GetStringAsync("/v1/stats"));
        stats.RootElement.TryGetProperty("index", out _).Should().BeTrue("sanity: an admin sees the index section");
        stats.RootElement.TryGetProperty("change_feed", out _).Should().BeFalse();
    }

    private static async Task<JsonElement> WaitForAsync(EngramServer server, Func<JsonElement, bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            using var stats = JsonDocument.Parse(await server.Client.GetStringAsync("/v1/stats"));
            var feed = stats.RootElement.GetProperty("change_feed");
            if (condition(feed))
            {
                return feed.Clone();
            }
            deadline.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(30), what);
            await Task.Delay(20);
        }
    }
}
