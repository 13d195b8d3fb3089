using System.Net;
using Engram.Core.Storage;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Http;

public class ExpiryTests
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    [Fact]
    public async Task ExpiredMemory_IsNeverReturned_AndTheSweeperDeletesItWithHistory()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await EngramServer.StartAsync(Backend, configure: o => o.SweepIntervalSeconds = 3600, clock: clock);
        var id = (await server.CreateAsync(new { content = "ephemeral", ttl_seconds = 60, user_id = "u" })).GetProperty("id").GetString();
        await server.CreateAsync(new { content = "durable", user_id = "u" });
        (await server.Client.GetAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.OK);

        clock.Advance(TimeSpan.FromSeconds(61));

        // Hidden from every read path before any sweep runs.
        await (await server.Client.GetAsync($"/v1/memories/{id}")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        var list = await (await server.Client.GetAsync("/v1/memories?user_id=u")).JsonAsync();
        list.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal("durable");
        (await (await server.Client.GetAsync("/v1/stats")).JsonAsync()).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1);
        await (await server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":1}""")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        // Same content again is not a duplicate of an expired memory.
        await server.CreateAsync(new { content = "ephemeral", user_id = "u" });

        var store = server.Services.GetRequiredService<IMemoryStore>();
        // The sweeper's pass at start-up runs in the background: on a loaded machine (PostgreSQL takes its job lock first)
        // it can come after the clock moved and take the memory itself. Either way it is deleted once, with one history entry.
        (await store.DeleteExpiredAsync(1000)).Should().BeInRange(0, 1);
        (await store.DeleteExpiredAsync(1000)).Should().Be(0);
        var history = (await (await server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync()).GetProperty("items").EnumerateArray().ToList();
        history.Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "expired");
        history[1].GetProperty("actor").GetString().Should().Be("system:ttl-sweeper");
    }

    [Fact]
    public async Task Sweeper_RunsInTheBackground()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await EngramServer.StartAsync(Backend, configure: o => o.SweepIntervalSeconds = 1, clock: clock);
        var id = (await server.CreateAsync(new { content = "gone soon", ttl_seconds = 5 })).GetProperty("id").GetString();
        clock.Advance(TimeSpan.FromMinutes(1));
        var deadline = DateTime.UtcNow.AddSeconds(15);
        int events;
        do
        {
            await Task.Delay(200);
            var history = await (await server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync();
            events = history.GetProperty("items").GetArrayLength();
        }
        while (events < 2 && DateTime.UtcNow < deadline);
        events.Should().Be(2, "the sweeper records an expired event within a few ticks");
    }
}
