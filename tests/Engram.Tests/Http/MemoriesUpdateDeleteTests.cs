using System.Net;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Http;

public class MemoriesUpdateDeleteTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Patch_ChangesOnlyGivenFields_ClearsNulls_BumpsVersion()
    {
        var created = await _server.CreateAsync(new { content = "old text", valence = 0.3, tags = new[] { "a" }, source = "chat" });
        var id = created.GetProperty("id").GetString();
        var response = await _server.PatchJsonAsync($"/v1/memories/{id}", """{"content":"new text","valence":null,"tags":["b","c"],"importance":0.9}""");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Headers.ETag!.Tag.Should().Be("\"2\"");
        var body = await response.JsonAsync();
        body.GetProperty("version").GetInt64().Should().Be(2);
        body.GetProperty("content").GetString().Should().Be("new text");
        body.GetProperty("content_hash").GetString().Should().NotBe(created.GetProperty("content_hash").GetString());
        body.GetProperty("valence").ValueKind.Should().Be(JsonValueKind.Null);
        body.GetProperty("importance").GetDouble().Should().Be(0.9);
        body.GetProperty("source").GetString().Should().Be("chat", "absent fields stay");
        body.GetProperty("seq").GetInt64().Should().BeGreaterThan(created.GetProperty("seq").GetInt64());

        var tagged = await (await _server.Client.GetAsync("/v1/memories?tags=c")).JsonAsync();
        tagged.GetProperty("items").EnumerateArray().Single().GetProperty("id").GetString().Should().Be(id);
        var untagged = await (await _server.Client.GetAsync("/v1/memories?tags=a")).JsonAsync();
        untagged.GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task Patch_IfMatch_StaleVersionGives412_CurrentSucceeds()
    {
        var id = (await _server.CreateAsync(new { content = "guarded" })).GetProperty("id").GetString();
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.1}""", "\"1\"")).StatusCode.Should().Be(HttpStatusCode.OK);
        var stale = await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.2}""", "\"1\"");
        (await stale.ShouldBeProblemAsync(HttpStatusCode.PreconditionFailed)).GetProperty("current_version").GetInt64().Should().Be(2);
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.2}""", "W/\"2\"")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.3}""", "*")).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.4}""", "banana")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "If-Match");
    }

    [Fact]
    public async Task Patch_ConcurrentUpdatesWithIfMatch_ExactlyOneWins()
    {
        var id = (await _server.CreateAsync(new { content = "race" })).GetProperty("id").GetString();
        // Every patch changes something (0.11 … 0.81, never the default 0.5): a patch that changes nothing
        // succeeds without a new version, and run first it would let a second one win too.
        var attempts = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            _server.PatchJsonAsync($"/v1/memories/{id}", $$"""{"importance":0.{{i + 1}}1}""", "\"1\"")));
        attempts.Count(r => r.StatusCode == HttpStatusCode.OK).Should().Be(1);
        attempts.Count(r => r.StatusCode == HttpStatusCode.PreconditionFailed).Should().Be(7);
    }

    [Fact]
    public async Task Patch_NoChange_KeepsVersionAndWritesNoHistory()
    {
        var id = (await _server.CreateAsync(new { content = "steady", importance = 0.7 })).GetProperty("id").GetString();
        var body = await (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.7}""")).JsonAsync();
        body.GetProperty("version").GetInt64().Should().Be(1);
        var history = await (await _server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync();
        history.GetProperty("items").GetArrayLength().Should().Be(1);
    }

    [Theory]
    [InlineData("""{"user_id":"someone"}""", "user_id")]
    [InlineData("""{"namespace":null}""", "namespace")]
    [InlineData("""{"content":""}""", "content")]
    [InlineData("""{"content":null}""", "content")]
    [InlineData("""{"tier":null}""", "tier")]
    [InlineData("""{"importance":7}""", "importance")]
    [InlineData("""{"id":"x"}""", "id")]
    [InlineData("""{"version":3}""", "version")]
    [InlineData("""{"valid_to":"1999-01-01T00:00:00Z","valid_from":"2000-01-01T00:00:00Z"}""", "valid_to")]
    public async Task Patch_InvalidInput_Gives400(string json, string field)
    {
        var id = (await _server.CreateAsync(new { content = "patch target " + field + json.Length })).GetProperty("id").GetString();
        await (await _server.PatchJsonAsync($"/v1/memories/{id}", json)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }

    [Fact]
    public async Task Patch_UnknownId_Gives404()
    {
        await (await _server.PatchJsonAsync("/v1/memories/01ARZ3NDEKTSV4RRFFQ69G5FAV", """{"importance":0.1}""")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delete_IfMatch_StaleVersionGives412AndKeepsTheMemory_CurrentDeletes()
    {
        var id = (await _server.CreateAsync(new { content = "guarded delete" })).GetProperty("id").GetString();
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.1}""", "\"1\"")).StatusCode.Should().Be(HttpStatusCode.OK);

        async Task<HttpResponseMessage> DeleteAsync(string ifMatch)
        {
            using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/memories/{id}");
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            return await _server.Client.SendAsync(request);
        }
        // Deleting the version one read before someone else's change would lose that change.
        (await (await DeleteAsync("\"1\"")).ShouldBeProblemAsync(HttpStatusCode.PreconditionFailed)).GetProperty("current_version").GetInt64().Should().Be(2);
        await (await DeleteAsync("banana")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "If-Match");
        (await _server.Client.GetAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.OK, "a refused delete deletes nothing");
        var history = await (await _server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync();
        history.GetProperty("items").GetArrayLength().Should().Be(2, "created and updated only");

        (await DeleteAsync("W/\"2\"")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        await (await DeleteAsync("\"2\"")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delete_Gives204ThenGone_AndSecondDeleteIs404()
    {
        var id = (await _server.CreateAsync(new { content = "to forget" })).GetProperty("id").GetString();
        var response = await _server.Client.DeleteAsync($"/v1/memories/{id}");
        response.StatusCode.Should().Be(HttpStatusCode.NoContent);
        response.Headers.GetValues("X-Engram-Seq").Single().Should().MatchRegex("^[0-9]+$");
        await (await _server.Client.GetAsync($"/v1/memories/{id}")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.DeleteAsync($"/v1/memories/{id}")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task History_RecordsCreateUpdateDeleteWithChangesAndActor()
    {
        var id = (await _server.CreateAsync(new { content = "v1 text", importance = 0.5 })).GetProperty("id").GetString();
        var request = new HttpRequestMessage(HttpMethod.Patch, $"/v1/memories/{id}") { Content = new StringContent("""{"importance":0.9,"tags":["t"]}""", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Engram-Actor", "alice");
        (await _server.Client.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.Client.DeleteAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        var history = (await (await _server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync()).GetProperty("items").EnumerateArray().ToList();
        history.Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "updated", "deleted");
        history.Select(h => h.GetProperty("version").GetInt64()).Should().Equal(1, 2, 2);
        history.Select(h => h.GetProperty("seq").GetInt64()).Should().BeInAscendingOrder();
        history[0].GetProperty("actor").GetString().Should().Be("http");
        history[1].GetProperty("actor").GetString().Should().Be("http:alice");
        history[0].GetProperty("changes").GetProperty("content").GetString().Should().Be("v1 text");
        var changes = history[1].GetProperty("changes");
        changes.GetProperty("importance").GetProperty("from").GetDouble().Should().Be(0.5);
        changes.GetProperty("importance").GetProperty("to").GetDouble().Should().Be(0.9);
        changes.GetProperty("tags").GetProperty("to")[0].GetString().Should().Be("t");
        changes.TryGetProperty("content", out _).Should().BeFalse("unchanged fields are not listed");
        history[2].GetProperty("changes").GetProperty("importance").GetDouble().Should().Be(0.9, "a delete keeps the last state");
        history[2].GetProperty("at").GetString().Should().EndWith("Z");
    }

    [Fact]
    public async Task History_UnknownId_Gives404()
    {
        await (await _server.Client.GetAsync("/v1/memories/01ARZ3NDEKTSV4RRFFQ69G5FAV/history")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task BulkDelete_ByScopeNeedsConfirmAndTouchesOnlyThatScope()
    {
        for (var i = 0; i < 3; i++)
        {
            await _server.CreateAsync(new { content = $"u1 memory {i}", user_id = "u1" });
        }
        await _server.CreateAsync(new { content = "u2 memory", user_id = "u2" });
        await _server.CreateAsync(new { content = "u1 other type", user_id = "u1", type = "preference" });

        await (await _server.Client.DeleteAsync("/v1/memories?user_id=u1")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "confirm");
        await (await _server.Client.DeleteAsync("/v1/memories?confirm=true")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "user_id");
        await (await _server.Client.DeleteAsync("/v1/memories?type=fact&confirm=true")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "user_id");
        await (await _server.Client.DeleteAsync("/v1/memories?usr_id=u1&confirm=true")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "usr_id");

        var response = await _server.Client.DeleteAsync("/v1/memories?user_id=u1&type=fact&confirm=true");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("deleted").GetInt32().Should().Be(3);
        var left = (await (await _server.Client.GetAsync("/v1/memories")).JsonAsync()).GetProperty("items").EnumerateArray()
            .Select(m => m.GetProperty("content").GetString()).OrderBy(x => x).ToList();
        left.Should().Equal("u1 other type", "u2 memory");
    }

    [Fact]
    public async Task BulkDelete_LargeScopeIsDeletedCompletelyWithHistory()
    {
        for (var batch = 0; batch < 2; batch++)
        {
            var items = string.Join(',', Enumerable.Range(batch * 600, 600).Select(i => $$"""{"content":"bulk {{i}}","user_id":"big"}"""));
            (await _server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{items}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        }
        var body = await (await _server.Client.DeleteAsync("/v1/memories?user_id=big&confirm=true")).JsonAsync();
        body.GetProperty("deleted").GetInt32().Should().Be(1200);
        var stats = await (await _server.Client.GetAsync("/v1/stats")).JsonAsync();
        stats.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(0);
        stats.GetProperty("last_seq").GetInt64().Should().Be(2400, "1200 creates and 1200 deletes each took one sequence number");
    }
}
