using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Engram.Core.Storage;
using Engram.Server.Operations;
using Engram.Tests.Support;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// The database goes away under a running server and comes back: a PostgreSQL server of this test's own
/// (<see cref="PostgresServer.StartDedicatedAsync"/>), stopped with a fast shutdown and started again on the same data
/// folder and port, under a real in-process Engram server. While it is away searches answer from the indexes, writes get
/// 503 with Retry-After and a problem naming the database, readiness is 503, stats say unreachable, and nothing is a 500;
/// once it is back, writes succeed without a restart and everything acknowledged before is there.
/// </summary>
public sealed class PostgresOutageTests
{
    /// <summary>Generous: the machine is shared and loaded; the backoff of the jobs is at most 10 s.</summary>
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_database_outage_keeps_searches_answering_refuses_writes_with_503_and_recovers_without_a_restart()
    {
        using var postgres = await PostgresServer.StartDedicatedAsync();
        var database = await postgres.CreateDatabaseAsync();
        await using var server = await EngramServer.StartAsync(postgres.Url(database));
        var client = server.Client;
        var endpoint = $"127.0.0.1:{postgres.Port}/{database}";

        var kept = await server.CreateAsync(new { content = "the lighthouse keeper writes the storm into the logbook", tags = new[] { "sea" } });
        var other = await server.CreateAsync(new { content = "the baker opens at six with rye bread" });
        var keptId = kept.GetProperty("id").GetString()!;
        (await client.PutAsync("/v1/kv/session:1", Json(new { value = "before" }))).IsSuccessStatusCode.Should().BeTrue();

        // Healthy: the backend, where it is, that it answers and how fast, and no lag once the follower polled the log.
        var polled = Stopwatch.StartNew();
        JsonElement health;
        while ((health = await (await client.GetAsync("/health")).JsonAsync()).GetProperty("index_lag").GetProperty("entries").GetInt64() > 0)
        {
            polled.Elapsed.Should().BeLessThan(Recovery);
            await Task.Delay(100);
        }
        var db = health.GetProperty("database");
        db.GetProperty("kind").GetString().Should().Be("postgres");
        db.GetProperty("location").GetString().Should().Be(endpoint);
        db.GetProperty("reachable").GetBoolean().Should().BeTrue();
        db.GetProperty("round_trip_ms").GetDouble().Should().BePositive();
        health.GetProperty("index_lag").GetProperty("age_seconds").GetDouble().Should().Be(0);
        var store = (await (await client.GetAsync("/v1/stats")).JsonAsync()).GetProperty("store");
        store.GetProperty("reachable").GetBoolean().Should().BeTrue();
        store.GetProperty("location").GetString().Should().Be(endpoint);

        await postgres.StopAsync();

        // Searches answer from the indexes and the copies of recent memories, and say the results may be stale.
        var search = await client.PostAsync("/v1/search", Json(new { query = "lighthouse storm logbook", k = 5 }));
        var searchText = await search.Content.ReadAsStringAsync();
        search.StatusCode.Should().Be(HttpStatusCode.OK, searchText);
        search.Headers.GetValues("Engram-Stale").Should().Equal("database-unavailable");
        var found = JsonDocument.Parse(searchText).RootElement;
        found.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Contain(keptId);
        found.GetProperty("results")[0].GetProperty("content").GetString().Should().Be("the lighthouse keeper writes the storm into the logbook");
        found.GetProperty("stale").GetProperty("reason").GetString().Should().Be("database_unavailable");
        // The MCP search tool says so too: an agent must not take such results as current.
        await using (var mcp = await McpConnections.ConnectHttpAsync(server))
        {
            var viaMcp = (await mcp.CallAsync("memory_search", """{"query":"lighthouse storm logbook","k":5}""")).Structured();
            viaMcp.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Contain(keptId);
            viaMcp.GetProperty("stale").GetProperty("reason").GetString().Should().Be("database_unavailable");
        }

        // Every write is a 503 naming the database, with Retry-After; never a 500.
        var writes = new List<HttpResponseMessage>
        {
            await client.PostAsync("/v1/memories", Json(new { content = "written while the database is away" })),
            await client.PatchAsync($"/v1/memories/{keptId}", Json(new { importance = 0.9 })),
            await client.DeleteAsync($"/v1/memories/{other.GetProperty("id").GetString()}"),
            await client.PutAsync("/v1/kv/session:1", Json(new { value = "during" })),
        };
        foreach (var write in writes)
        {
            var problem = await write.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
            problem.GetProperty("reason").GetString().Should().Be("database_unavailable");
            problem.GetProperty("database").GetString().Should().Be($"postgres {endpoint}");
            write.Headers.RetryAfter!.Delta.Should().BeGreaterThan(TimeSpan.Zero);
        }
        // A read the indexes cannot serve (one memory by id) is a 503 too, not a 500.
        (await client.GetAsync($"/v1/memories/{keptId}")).StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);

        // Not ready, and /health says which check fails and why.
        var ready = await client.GetAsync("/health/ready");
        ready.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        (await ready.JsonAsync()).GetProperty("failing").EnumerateArray().Select(f => f.GetString()).Should().Contain("store");
        var down = await client.GetAsync("/health");
        down.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        var downBody = await down.JsonAsync();
        downBody.GetProperty("database").GetProperty("reachable").GetBoolean().Should().BeFalse();
        var storeCheck = downBody.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "store");
        storeCheck.GetProperty("status").GetString().Should().Be("fail");
        storeCheck.GetProperty("detail").GetString().Should().Contain(endpoint);

        // Stats answer, from the indexes, and say the store is unreachable.
        var stats = await client.GetAsync("/v1/stats");
        var statsBody = await stats.JsonAsync();
        stats.StatusCode.Should().Be(HttpStatusCode.OK, statsBody.ToString());
        statsBody.GetProperty("store").GetProperty("reachable").GetBoolean().Should().BeFalse();
        statsBody.GetProperty("store").GetProperty("counts_from").GetString().Should().Be("index");
        statsBody.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(2);

        var scrape = await client.GetAsync("/metrics");
        var metrics = await scrape.Content.ReadAsStringAsync();
        scrape.StatusCode.Should().Be(HttpStatusCode.OK, metrics);
        metrics.Split('\n').Should().Contain(line => line.StartsWith("engram_store_up{", StringComparison.Ordinal)
            && line.Contains("backend=\"postgres\"", StringComparison.Ordinal) && line.Contains($"location=\"{endpoint}\"", StringComparison.Ordinal) && line.EndsWith("} 0", StringComparison.Ordinal));

        // Doctor on the same URL says the database does not answer, and what to do.
        var doctor = await Doctor.RunAsync(new ConfigurationBuilder().Build(), server.DataPath, null, CancellationToken.None, postgres.Url(database));
        var doctorStore = doctor.Single(c => c.Name == "store");
        doctorStore.Status.Should().Be(HealthChecks.Fail);
        doctorStore.Detail.Should().Contain(endpoint);

        // A search just before the database comes back: for a second after, searches do not ask the store again,
        // unless a write is acknowledged in between (the fresh search below must not stay stale on that window).
        (await client.PostAsync("/v1/search", Json(new { query = "lighthouse", k = 5 }))).Headers.Contains("Engram-Stale").Should().BeTrue();
        await postgres.StartAgainAsync();

        // Writes succeed again within a few seconds, without restarting Engram, and readiness returns.
        var waited = Stopwatch.StartNew();
        HttpResponseMessage after;
        while ((after = await client.PostAsync("/v1/memories", Json(new { content = "written after the database came back" }))).StatusCode != HttpStatusCode.Created)
        {
            after.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, await after.Content.ReadAsStringAsync());
            waited.Elapsed.Should().BeLessThan(Recovery);
            await Task.Delay(200);
        }
        while ((await client.GetAsync("/health/ready")).StatusCode != HttpStatusCode.OK)
        {
            waited.Elapsed.Should().BeLessThan(Recovery);
            await Task.Delay(200);
        }

        // Everything acknowledged before is there, and search is fresh again.
        (await client.GetAsync($"/v1/memories/{keptId}")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync($"/v1/memories/{other.GetProperty("id").GetString()}")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await (await client.GetAsync("/v1/kv/session:1")).JsonAsync()).GetProperty("value").GetString().Should().Be("before");
        var fresh = await client.PostAsync("/v1/search", Json(new { query = "database came back", k = 5 }));
        fresh.Headers.Contains("Engram-Stale").Should().BeFalse(await fresh.Content.ReadAsStringAsync());
        (await fresh.JsonAsync()).GetProperty("results")[0].GetProperty("content").GetString().Should().Be("written after the database came back");
        var back = await (await client.GetAsync("/v1/stats")).JsonAsync();
        back.GetProperty("store").GetProperty("reachable").GetBoolean().Should().BeTrue();
        back.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(3);
    }

    [Fact]
    public async Task A_statement_timeout_is_a_503_with_retry_after_not_a_500()
    {
        var shared = await PostgresServer.GetAsync();
        var database = await shared.CreateDatabaseAsync();
        try
        {
            // Every statement of this server's sessions may run 300 ms; a write that waits on a lock longer is cancelled by PostgreSQL (57014).
            await using var server = await EngramServer.StartAsync(shared.Url(database) + "?options=-c%20statement_timeout%3D300");
            (await server.Client.PostAsync("/v1/memories", Json(new { content = "before the lock" }))).StatusCode.Should().Be(HttpStatusCode.Created);

            await using var holder = new NpgsqlConnection(shared.ConnectionString(database) + ";Pooling=false");
            await holder.OpenAsync();
            await using var transaction = await holder.BeginTransactionAsync();
            await using (var lockHead = new NpgsqlCommand("LOCK TABLE log_head IN ACCESS EXCLUSIVE MODE", holder, transaction))
            {
                await lockHead.ExecuteNonQueryAsync();
            }

            var refused = await server.Client.PostAsync("/v1/memories", Json(new { content = "waits on the lock" }));
            var problem = await refused.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
            problem.GetProperty("reason").GetString().Should().Be("database_unavailable");
            refused.Headers.RetryAfter.Should().NotBeNull();

            await transaction.RollbackAsync();
            (await server.Client.PostAsync("/v1/memories", Json(new { content = "after the lock" }))).StatusCode.Should().Be(HttpStatusCode.Created);
        }
        finally
        {
            shared.DropDatabase(database);
        }
    }

    [Theory]
    [InlineData("08006", true)] // connection failure
    [InlineData("08001", true)] // cannot connect
    [InlineData("53300", true)] // too many connections
    [InlineData("57P01", true)] // admin shutdown
    [InlineData("57P03", true)] // cannot connect now (starting up, shutting down)
    [InlineData("57014", true)] // statement timeout
    [InlineData("23505", false)] // unique violation: the request's business
    [InlineData("23503", false)] // foreign key
    [InlineData("42601", false)] // a syntax error is a bug: 500
    [InlineData("22P02", false)] // invalid input
    public void Sqlstates_of_an_unreachable_database_are_unavailable_and_the_rest_are_not(string sqlState, bool unavailable)
    {
        var failure = new StoreException("the PostgreSQL store failed", new PostgresException("message", "ERROR", "ERROR", sqlState));
        StoreFailure.IsUnavailable(failure).Should().Be(unavailable);
    }

    [Fact]
    public void Connections_time_out_well_inside_the_request_time_out_unless_the_url_says_otherwise()
    {
        var defaults = Core.Storage.Postgres.PostgresMemoryStore.Settings("postgres://u:secret@db.example:5433/engram");
        defaults.Timeout.Should().Be(Core.Storage.Postgres.PostgresMemoryStore.DefaultConnectTimeoutSeconds);
        defaults.CommandTimeout.Should().Be(Core.Storage.Postgres.PostgresMemoryStore.DefaultCommandTimeoutSeconds);
        var given = Core.Storage.Postgres.PostgresMemoryStore.Settings("postgres://u:secret@db.example:5433/engram?timeout=2&commandtimeout=9&maxpoolsize=7");
        (given.Timeout, given.CommandTimeout, given.MaxPoolSize).Should().Be((2, 9, 7));
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
}
