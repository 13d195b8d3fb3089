using System.Net;
using Engram.Core;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Http;

public class SystemTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Health_ReportsOkVersionStoreAndUptime()
    {
        // While the indexes load the server is not ready, and /health says so with a 503 (a fresh server takes a moment).
        await _server.Services.GetRequiredService<EngramEngine>().EnsureIndexedAsync();
        var response = await _server.Client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var body = await response.JsonAsync();
        body.GetProperty("status").GetString().Should().Be("ok");
        body.GetProperty("version").GetString().Should().MatchRegex(@"^\d+\.\d+\.\d+");
        body.GetProperty("store").GetString().Should().Be(Backend == Backend.Postgres ? "postgres" : "sqlite");
        body.GetProperty("uptime_seconds").GetInt64().Should().BeGreaterThanOrEqualTo(0);
    }

    [Fact]
    public async Task Stats_CountsByTypeAndTier_AndReportsSizeAndLastSeq()
    {
        await _server.CreateAsync(new { content = "s1", type = "fact" });
        await _server.CreateAsync(new { content = "s2", type = "fact", tier = "working" });
        var last = (await _server.CreateAsync(new { content = "s3", type = "preference" })).GetProperty("seq").GetInt64();
        var stats = await (await _server.Client.GetAsync("/v1/stats")).JsonAsync();
        var memories = stats.GetProperty("memories");
        memories.GetProperty("total").GetInt64().Should().Be(3);
        memories.GetProperty("by_type").GetProperty("fact").GetInt64().Should().Be(2);
        memories.GetProperty("by_type").GetProperty("preference").GetInt64().Should().Be(1);
        memories.GetProperty("by_tier").GetProperty("long_term").GetInt64().Should().Be(2);
        memories.GetProperty("by_tier").GetProperty("working").GetInt64().Should().Be(1);
        stats.GetProperty("store_bytes").GetInt64().Should().BeGreaterThan(4096);
        stats.GetProperty("last_seq").GetInt64().Should().Be(last);
        stats.GetProperty("store").GetProperty("kind").GetString().Should().Be(Backend == Backend.Postgres ? "postgres" : "sqlite");
    }

    [Fact]
    public async Task OpenApi_DescribesTheWholeApi()
    {
        var response = await _server.Client.GetAsync("/openapi/v1.json");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var doc = await response.JsonAsync();
        doc.GetProperty("openapi").GetString().Should().StartWith("3.");
        var paths = doc.GetProperty("paths");
        foreach (var path in new[] { "/v1/memories", "/v1/memories/batch", "/v1/memories/{id}", "/v1/memories/{id}/history", "/health", "/v1/stats" })
        {
            paths.TryGetProperty(path, out _).Should().BeTrue(path);
        }
        var memoryPaths = paths.GetProperty("/v1/memories");
        memoryPaths.TryGetProperty("post", out _).Should().BeTrue();
        memoryPaths.TryGetProperty("get", out _).Should().BeTrue();
        memoryPaths.TryGetProperty("delete", out _).Should().BeTrue();
        paths.GetProperty("/v1/memories/{id}").TryGetProperty("patch", out _).Should().BeTrue();
        var schemas = doc.GetProperty("components").GetProperty("schemas");
        schemas.GetProperty("NewMemory").GetProperty("properties").TryGetProperty("user_id", out _).Should().BeTrue("the document uses the wire's snake_case names");
    }

    [Fact]
    public async Task UnknownRouteAndWrongMethod_GetProblemBodies()
    {
        await (await _server.Client.GetAsync("/v1/nothing-here")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.PutAsync("/v1/memories", new StringContent("{}"))).ShouldBeProblemAsync(HttpStatusCode.MethodNotAllowed);
    }
}
