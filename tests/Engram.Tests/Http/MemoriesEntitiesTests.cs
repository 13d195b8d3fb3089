using System.Net;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Http;

/// <summary>The <c>entities</c> field: stored as given (trimmed, NFC, first spelling), filtered case-insensitively.</summary>
public class MemoriesEntitiesTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static List<string?> Names(JsonElement memory) =>
        memory.GetProperty("entities").EnumerateArray().Select(e => e.GetString()).ToList();

    private async Task<List<string?>> ListContents(string query)
    {
        var response = await _server.Client.GetAsync("/v1/memories?" + query);
        var body = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToString());
        return body.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).ToList();
    }

    private async Task<List<string?>> SearchContents(object body) =>
        [.. (await _server.SearchAsync(body)).Select(m => m.GetProperty("content").GetString())];

    [Fact]
    public async Task Create_NormalisesAndDeduplicates_KeepingTheFirstSpelling_AndGetReturnsThem()
    {
        // "Cafe\u0301" is the decomposed form of "Café"; NFC makes it the same name.
        var created = await _server.CreateAsync(new { content = "Alice met Bob at Café Lumière", entities = new[] { "  Alice ", "Bob", "ALICE", "Cafe\u0301 Lumière", "café lumière", "Acme, Inc." } });
        Names(created).Should().Equal("Alice", "Bob", "Café Lumière", "Acme, Inc.");
        var fetched = await (await _server.Client.GetAsync($"/v1/memories/{created.GetProperty("id").GetString()}")).JsonAsync();
        Names(fetched).Should().Equal("Alice", "Bob", "Café Lumière", "Acme, Inc.");

        var plain = await _server.CreateAsync(new { content = "no names here" });
        plain.GetProperty("entities").ValueKind.Should().Be(JsonValueKind.Array, "entities is always present");
        plain.GetProperty("entities").GetArrayLength().Should().Be(0);
    }

    [Theory]
    [InlineData("""{"content":"x","entities":[""]}""")]
    [InlineData("""{"content":"x","entities":["   "]}""")]
    [InlineData("""{"content":"x","entities":[null]}""")]
    [InlineData("""{"content":"x","entities":["a\u0007b"]}""")]
    [InlineData("""{"content":"x","entities":"Alice"}""")]
    [InlineData("""{"content":"x","entities":[42]}""")]
    [InlineData("""{"content":"x","entities":{"name":"Alice"}}""")]
    public async Task Create_InvalidEntities_Gives400NamingTheField(string json)
    {
        var problem = await (await _server.PostJsonAsync("/v1/memories", json)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities");
        problem.GetProperty("detail").GetString().Should().NotContain("System.");
    }

    [Fact]
    public async Task Limits_CountAndLength()
    {
        var sixtyFour = Enumerable.Range(0, 64).Select(i => $"Person {i}").ToArray();
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "64 names", entities = sixtyFour }))).StatusCode.Should().Be(HttpStatusCode.Created);
        var tooMany = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "65 names", entities = sixtyFour.Append("Person 64") }));
        (await tooMany.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities")).GetProperty("detail").GetString().Should().Contain("64");

        // Surrounding white space does not count towards the 256 characters.
        var longest = " " + new string('n', 256) + " ";
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "long name", entities = new[] { longest } }))).StatusCode.Should().Be(HttpStatusCode.Created);
        var tooLong = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "too long", entities = new[] { new string('n', 257) } }));
        (await tooLong.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities")).GetProperty("detail").GetString().Should().Contain("256");

        await using var strict = await EngramServer.StartAsync(Backend, configure: o => o.Limits.MaxEntities = 1);
        await (await strict.PostJsonAsync("/v1/memories", """{"content":"two","entities":["a","b"]}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities");
    }

    [Fact]
    public async Task Batch_AcceptsEntities_AndReportsABadItemInPlace()
    {
        var response = await _server.PostJsonAsync("/v1/memories/batch",
            """{"items":[{"content":"batch one","entities":["Rex"]},{"content":"batch two","entities":[""]}]}""");
        var results = (await response.JsonAsync()).GetProperty("results").EnumerateArray().ToList();
        results[0].GetProperty("status").GetString().Should().Be("created");
        results[1].GetProperty("status").GetString().Should().Be("error");
        results[1].GetProperty("error").GetString().Should().StartWith("entities:");
        (await ListContents("entity=rex")).Should().Equal("batch one");
    }

    [Fact]
    public async Task Patch_ReplacesTheList_NullClears_AndHistoryRecordsTheChange()
    {
        var id = (await _server.CreateAsync(new { content = "trip planning", entities = new[] { "Alice", "Lisbon" } })).GetProperty("id").GetString();

        var replaced = await (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"entities":["Bob","lisbon"]}""")).JsonAsync();
        Names(replaced).Should().Equal("Bob", "lisbon");
        replaced.GetProperty("version").GetInt64().Should().Be(2);
        (await ListContents("entity=alice")).Should().BeEmpty("the old list is gone");
        (await ListContents("entity=bob")).Should().Equal("trip planning");
        (await ListContents("entity=LISBON")).Should().Equal("trip planning");

        var unchanged = await (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.9}""")).JsonAsync();
        Names(unchanged).Should().Equal(new[] { "Bob", "lisbon" }, "absent fields stay");

        var cleared = await (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"entities":null}""")).JsonAsync();
        cleared.GetProperty("entities").GetArrayLength().Should().Be(0);
        (await ListContents("entity=bob")).Should().BeEmpty();

        await (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"entities":[""]}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities");

        var history = (await (await _server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync()).GetProperty("items").EnumerateArray().ToList();
        history.Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "updated", "updated", "updated");
        Names(history[0].GetProperty("changes")).Should().Equal("Alice", "Lisbon");
        var change = history[1].GetProperty("changes").GetProperty("entities");
        change.GetProperty("from").EnumerateArray().Select(e => e.GetString()).Should().Equal("Alice", "Lisbon");
        change.GetProperty("to").EnumerateArray().Select(e => e.GetString()).Should().Equal("Bob", "lisbon");
        history[2].GetProperty("changes").TryGetProperty("entities", out _).Should().BeFalse("only importance changed");
        history[3].GetProperty("changes").GetProperty("entities").GetProperty("to").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task ListFilter_IsCaseInsensitive_NormalisesTheName_AndCombinesWithOtherFilters()
    {
        await _server.CreateAsync(new { content = "one", entities = new[] { "Zoë Park" }, user_id = "u1" });
        await _server.CreateAsync(new { content = "two", entities = new[] { "zoë park", "Acme, Inc." }, user_id = "u2" });
        await _server.CreateAsync(new { content = "three", entities = new[] { "Zoe" }, user_id = "u1" });

        (await ListContents("entity=ZO%C3%8B%20PARK")).Should().Equal("two", "one");
        (await ListContents("entity=%20Zoe%CC%88%20park%20")).Should().Equal(new[] { "two", "one" }, "trimmed and NFC like stored names");
        (await ListContents("entity=zo%C3%AB%20park&user_id=u1")).Should().Equal("one");
        (await ListContents("entity=Acme,%20Inc.")).Should().Equal(new[] { "two" }, "a comma is part of the name, not a list");
        (await ListContents("entity=Zo")).Should().BeEmpty("whole names only");
        (await ListContents("entity=nobody")).Should().BeEmpty();

        await (await _server.Client.GetAsync("/v1/memories?entity=")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entity");
        await (await _server.Client.GetAsync("/v1/memories?entity=%20%20")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entity");
        await (await _server.Client.GetAsync("/v1/memories?entity=a&entity=b")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entity");

        // The bulk delete takes the same filter.
        var deleted = await (await _server.Client.DeleteAsync("/v1/memories?user_id=u1&entity=zoe&confirm=true")).JsonAsync();
        deleted.GetProperty("deleted").GetInt32().Should().Be(1);
        (await ListContents("user_id=u1")).Should().Equal("one");
    }

    [Fact]
    public async Task SearchFilter_AppliesBeforeTheTopKCut()
    {
        // 60 strong matches naming nobody, 5 weaker ones naming Dana: a filtered search must still return the 5.
        var noise = string.Join(',', Enumerable.Range(0, 60).Select(i => $$"""{"content":"quarterly budget review budget meeting {{i}}"}"""));
        (await _server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{noise}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        var dana = string.Join(',', Enumerable.Range(0, 5).Select(i => $$"""{"content":"notes on the budget, item {{i}}","entities":["Dana"]}"""));
        (await _server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{dana}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);

        var unfiltered = await SearchContents(new { query = "budget review meeting", k = 5 });
        unfiltered.Should().OnlyContain(c => c!.StartsWith("quarterly", StringComparison.Ordinal));
        var filtered = await SearchContents(new { query = "budget review meeting", k = 5, filters = new { entity = "DANA" } });
        filtered.Should().HaveCount(5).And.OnlyContain(c => c!.StartsWith("notes on the budget", StringComparison.Ordinal));
        (await SearchContents(new { query = "budget", k = 5, filters = new { entity = "Dan" } })).Should().BeEmpty();

        await (await _server.PostJsonAsync("/v1/search", """{"query":"budget","filters":{"entity":"  "}}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "filters.entity");
        await (await _server.PostJsonAsync("/v1/search", """{"query":"budget","filters":{"entity":["Dana"]}}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task SearchFilter_FollowsUpdates()
    {
        var id = (await _server.CreateAsync(new { content = "the hiking trip to the Alps", entities = new[] { "Erin" } })).GetProperty("id").GetString();
        (await SearchContents(new { query = "hiking trip", filters = new { entity = "erin" } })).Should().ContainSingle();
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"entities":["Frank"]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await SearchContents(new { query = "hiking trip", filters = new { entity = "erin" } })).Should().BeEmpty();
        (await SearchContents(new { query = "hiking trip", filters = new { entity = "frank" } })).Should().ContainSingle();
    }

    [Fact]
    public async Task GraphEntityMemories_ListsTheMemoriesNamingTheEntity_Paged()
    {
        (await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"Alice","entity_type":"person","observations":[]},{"name":"Loner","entity_type":"person","observations":[]}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        await _server.CreateAsync(new { content = "first about alice", entities = new[] { "alice" } });
        await _server.CreateAsync(new { content = "not about her", entities = new[] { "Bob" } });
        await _server.CreateAsync(new { content = "second about alice", entities = new[] { "ALICE", "Bob" } });

        var first = await (await _server.Client.GetAsync("/v1/graph/entities/Alice/memories?limit=1")).JsonAsync();
        first.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal("second about alice");
        var cursor = first.GetProperty("next_cursor").GetString();
        var second = await (await _server.Client.GetAsync($"/v1/graph/entities/Alice/memories?limit=1&cursor={cursor}")).JsonAsync();
        second.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal("first about alice");
        second.GetProperty("next_cursor").ValueKind.Should().Be(JsonValueKind.Null);

        // Matched case-insensitively to the graph's name; an entity no memory names has an empty page.
        (await (await _server.Client.GetAsync("/v1/graph/entities/alice/memories")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(2);
        (await (await _server.Client.GetAsync("/v1/graph/entities/Loner/memories")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
        // Bob is named by memories but is no graph entity: nothing is created behind the caller's back.
        await (await _server.Client.GetAsync("/v1/graph/entities/Bob/memories")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.GetAsync("/v1/graph/entities/Alice/memories?user=x")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "user");
        var graph = await (await _server.Client.GetAsync("/v1/graph")).JsonAsync();
        graph.GetProperty("entities").GetArrayLength().Should().Be(2);
    }
}
