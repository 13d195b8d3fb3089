using System.Net;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Http;

public class MemoriesBatchTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Batch_ReportsEachItemInOrder()
    {
        await _server.CreateAsync(new { content = "already here" });
        var response = await _server.PostJsonAsync("/v1/memories/batch", """
            {"items":[{"content":"first"},{"content":"already here"},{"content":"","type":"fact"},{"content":"first"},{"content":"last","importance":2}]}
            """);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var results = (await response.JsonAsync()).GetProperty("results").EnumerateArray().ToList();
        results.Select(r => r.GetProperty("status").GetString()).Should().Equal("created", "duplicate", "error", "duplicate", "error");
        results[0].GetProperty("id").GetString().Should().HaveLength(26);
        results[0].GetProperty("seq").GetInt64().Should().BePositive();
        results[3].GetProperty("id").GetString().Should().Be(results[0].GetProperty("id").GetString(), "a duplicate inside one batch points at the first copy");
        results[2].GetProperty("error").GetString().Should().Contain("content");
        results[4].GetProperty("error").GetString().Should().Contain("importance");
        var list = await (await _server.Client.GetAsync("/v1/memories")).JsonAsync();
        list.GetProperty("items").GetArrayLength().Should().Be(2);
    }

    [Fact]
    public async Task Batch_RejectPolicyMarksDuplicatesAsErrors()
    {
        await _server.CreateAsync(new { content = "exists" });
        var response = await _server.PostJsonAsync("/v1/memories/batch?on_duplicate=reject", """{"items":[{"content":"exists"},{"content":"new one"}]}""");
        var results = (await response.JsonAsync()).GetProperty("results").EnumerateArray().ToList();
        results[0].GetProperty("status").GetString().Should().Be("error");
        results[0].GetProperty("error").GetString().Should().Contain("duplicate");
        results[1].GetProperty("status").GetString().Should().Be("created");
    }

    [Fact]
    public async Task Batch_ThousandItemsAreAcceptedAndOneMoreIsRefused()
    {
        var thousand = JsonSerializer.Serialize(new { items = Enumerable.Range(0, 1000).Select(i => new { content = $"memory number {i}" }) });
        var response = await _server.PostJsonAsync("/v1/memories/batch", thousand);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("results").EnumerateArray().Should().OnlyContain(r => r.GetProperty("status").GetString() == "created");
        var stats = await (await _server.Client.GetAsync("/v1/stats")).JsonAsync();
        stats.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1000);

        var tooMany = JsonSerializer.Serialize(new { items = Enumerable.Range(0, 1001).Select(i => new { content = $"m {i}" }) });
        await (await _server.PostJsonAsync("/v1/memories/batch", tooMany)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "items");
    }

    [Theory]
    [InlineData("""{"items":[]}""", "items")]
    [InlineData("""{}""", "items")]
    [InlineData("""{"items":[{"content":"x","nope":1}]}""", "nope")]
    [InlineData("""{"items":"x"}""", "items")]
    [InlineData("""{"memories":[]}""", "memories")]
    public async Task Batch_BadEnvelope_Gives400(string json, string field)
    {
        await (await _server.PostJsonAsync("/v1/memories/batch", json)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }
}
