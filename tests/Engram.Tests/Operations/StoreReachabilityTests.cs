using System.Net;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// What /health, /health/ready, /v1/stats and /metrics say about the store on a healthy server of either backend: which
/// backend, where (no credentials), that it answers and how fast, and the index lag with its age.
/// </summary>
public sealed class StoreReachabilityTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_healthy_server_reports_its_backend_where_it_is_that_it_answers_and_no_index_lag(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        await server.CreateAsync(new { content = "a memory so the change log has an entry" });
        // The search catches the index up with this process's write (read-your-writes).
        await server.SearchAsync(new { query = "memory change log" });

        var health = await (await server.Client.GetAsync("/health")).JsonAsync();
        var database = health.GetProperty("database");
        var kind = backend == Backend.Sqlite ? "sqlite" : "postgres";
        database.GetProperty("kind").GetString().Should().Be(kind);
        database.GetProperty("reachable").GetBoolean().Should().BeTrue();
        database.GetProperty("round_trip_ms").GetDouble().Should().BeGreaterThanOrEqualTo(0);
        var location = database.GetProperty("location").GetString()!;
        if (backend == Backend.Sqlite)
        {
            location.Should().Be(Path.Combine(Path.GetFullPath(server.DataPath), "engram.db"));
        }
        else
        {
            location.Should().MatchRegex(@"^127\.0\.0\.1:\d+/engram_\d+_\d+$").And.NotContain("postgres@");
        }
        var lag = health.GetProperty("index_lag");
        lag.GetProperty("entries").GetInt64().Should().Be(0);
        lag.GetProperty("age_seconds").GetDouble().Should().Be(0);
        lag.GetProperty("caught_up_at").ValueKind.Should().Be(JsonValueKind.String);
        var store = health.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "store");
        store.GetProperty("status").GetString().Should().Be("ok");
        store.GetProperty("detail").GetString().Should().StartWith($"{kind} {location} answers (").And.Contain("ms round trip");

        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);

        var stats = await (await server.Client.GetAsync("/v1/stats")).JsonAsync();
        stats.GetProperty("store").GetProperty("kind").GetString().Should().Be(kind);
        stats.GetProperty("store").GetProperty("reachable").GetBoolean().Should().BeTrue();
        stats.GetProperty("store").GetProperty("location").GetString().Should().Be(location);
        stats.GetProperty("store").TryGetProperty("counts_from", out _).Should().BeFalse();
        stats.GetProperty("index").GetProperty("lag").GetProperty("entries").GetInt64().Should().Be(0);

        var metrics = await server.Client.GetStringAsync("/metrics");
        metrics.Split('\n').Should().Contain(line => line.StartsWith("engram_store_up{", StringComparison.Ordinal)
            && line.Contains($"backend=\"{kind}\"", StringComparison.Ordinal) && line.Contains($"location=\"{location}\"", StringComparison.Ordinal) && line.EndsWith("} 1", StringComparison.Ordinal));
        metrics.Should().Contain("engram_store_round_trip_seconds{").And.Contain("engram_index_lag_seconds{");
    }

    [Fact]
    public async Task A_key_below_admin_sees_the_backend_and_whether_it_answers_but_not_where_it_is()
    {
        await using var server = await EngramServer.StartAsync(Backend.Sqlite);
        await server.CreateKeyAsync("default", Core.Security.Role.Admin, name: "admin");
        var reader = server.ClientWithKey(await server.CreateKeyAsync("default", Core.Security.Role.Read, name: "reader"));
        var store = (await (await reader.GetAsync("/v1/stats")).JsonAsync()).GetProperty("store");
        store.GetProperty("kind").GetString().Should().Be("sqlite");
        store.GetProperty("reachable").GetBoolean().Should().BeTrue();
        store.TryGetProperty("location", out _).Should().BeFalse();
        store.TryGetProperty("round_trip_ms", out _).Should().BeFalse();
    }
}
