using System.Net;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Graph;

/// <summary>The <c>/v1/graph</c> endpoints on a real server over a real SQLite file.</summary>
public class GraphHttpTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend, clock: _clock);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<JsonElement> PostAsync(string path, string json)
    {
        var response = await _server.PostJsonAsync(path, json);
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task<JsonElement> GetAsync(string path)
    {
        var response = await _server.Client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static string[] Names(JsonElement graph) =>
        graph.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToArray();

    private static string[] Edges(JsonElement graph) =>
        graph.GetProperty("relations").EnumerateArray()
            .Select(r => $"{r.GetProperty("from").GetString()}-{r.GetProperty("relation_type").GetString()}->{r.GetProperty("to").GetString()}").ToArray();

    /// <summary>A chain a-b-c-d-e (knows), plus a -[likes]-> x.</summary>
    private async Task SeedChainAsync()
    {
        await PostAsync("/v1/graph/entities", """
            {"entities":[{"name":"a","entity_type":"node","observations":["first"]},{"name":"b","entity_type":"node"},{"name":"c","entity_type":"node"},
                         {"name":"d","entity_type":"node"},{"name":"e","entity_type":"node"},{"name":"x","entity_type":"node"},{"name":"lonely","entity_type":"node"}]}
            """);
        await PostAsync("/v1/graph/relations", """
            {"relations":[{"from":"a","to":"b","relation_type":"knows"},{"from":"c","to":"b","relation_type":"knows"},{"from":"c","to":"d","relation_type":"knows"},
                          {"from":"d","to":"e","relation_type":"knows"},{"from":"a","to":"x","relation_type":"likes"}]}
            """);
    }

    [Fact]
    public async Task McpSemantics_DuplicatesAreSkipped_AndTheGraphReadsBack()
    {
        var created = await PostAsync("/v1/graph/entities", """{"entities":[{"name":"Ada","entity_type":"person","observations":["math","math"]},{"name":"Ada","entity_type":"robot"}]}""");
        Names(created.GetProperty("entities").ValueKind == JsonValueKind.Array ? created : default).Should().Equal("Ada");
        created.GetProperty("entities")[0].GetProperty("observations").EnumerateArray().Select(o => o.GetString()).Should().Equal("math");
        var again = await PostAsync("/v1/graph/entities", """{"entities":[{"name":"Ada","entity_type":"robot"},{"name":"Bob","entity_type":"person"}]}""");
        Names(again).Should().Equal("Bob");

        var relations = """{"relations":[{"from":"Ada","to":"Bob","relation_type":"knows","weight":0.8}]}""";
        (await PostAsync("/v1/graph/relations", relations)).GetProperty("relations").GetArrayLength().Should().Be(1);
        (await PostAsync("/v1/graph/relations", relations)).GetProperty("relations").GetArrayLength().Should().Be(0);

        var added = await PostAsync("/v1/graph/observations", """{"observations":[{"entity_name":"Ada","contents":["math","poetry"]}]}""");
        added.GetProperty("results")[0].GetProperty("added_observations").EnumerateArray().Select(o => o.GetString()).Should().Equal("poetry");

        var graph = await GetAsync("/v1/graph");
        Names(graph).Should().Equal("Ada", "Bob");
        graph.GetProperty("entities")[0].GetProperty("entity_type").GetString().Should().Be("person");
        graph.GetProperty("entities")[0].GetProperty("observations").EnumerateArray().Select(o => o.GetString()).Should().Equal("math", "poetry");
        graph.GetProperty("entities")[0].TryGetProperty("invalid_observations", out _).Should().BeFalse();
        Edges(graph).Should().Equal("Ada-knows->Bob");
        graph.GetProperty("relations")[0].GetProperty("weight").GetDouble().Should().Be(0.8);
    }

    [Fact]
    public async Task DeletingAnEntity_CascadesToItsRelationsAndObservations()
    {
        await SeedChainAsync();
        (await PostAsync("/v1/graph/entities/delete", """{"entity_names":["b","nope"]}""")).GetProperty("deleted").GetInt32().Should().Be(1);
        var graph = await GetAsync("/v1/graph");
        Names(graph).Should().NotContain("b");
        Edges(graph).Should().BeEquivalentTo("c-knows->d", "d-knows->e", "a-likes->x");

        (await PostAsync("/v1/graph/relations/delete", """{"relations":[{"from":"c","to":"d","relation_type":"knows"},{"from":"c","to":"d","relation_type":"hates"}]}"""))
            .GetProperty("deleted").GetInt32().Should().Be(1);
        (await PostAsync("/v1/graph/observations/delete", """{"deletions":[{"entity_name":"a","observations":["first","never there"]}]}"""))
            .GetProperty("deleted").GetInt32().Should().Be(1);
        graph = await GetAsync("/v1/graph");
        Edges(graph).Should().BeEquivalentTo("d-knows->e", "a-likes->x");
        graph.GetProperty("entities")[0].GetProperty("observations").GetArrayLength().Should().Be(0);

        // A recreated entity starts clean: the old relations do not come back.
        await PostAsync("/v1/graph/entities", """{"entities":[{"name":"b","entity_type":"node"}]}""");
        (await GetAsync("/v1/graph/entities/b/neighbors")).GetProperty("relations").GetArrayLength().Should().Be(0);

        var history = await GetAsync("/v1/graph/entities/b/history");
        history.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("event").GetString()).Should().Equal(
            "entity_created", "relation_created", "relation_created", "relation_deleted", "relation_deleted", "entity_deleted", "entity_created");
        history.GetProperty("items")[0].GetProperty("actor").GetString().Should().Be("http");
    }

    [Fact]
    public async Task Neighbors_FollowBothDirections_UpToDepth_AndFilterByType()
    {
        await SeedChainAsync();
        Names(await GetAsync("/v1/graph/entities/a/neighbors")).Should().BeEquivalentTo("a", "b", "x");
        var two = await GetAsync("/v1/graph/entities/a/neighbors?depth=2");
        Names(two).Should().BeEquivalentTo("a", "b", "x", "c");
        Edges(two).Should().BeEquivalentTo("a-knows->b", "a-likes->x", "c-knows->b");
        Names(await GetAsync("/v1/graph/entities/a/neighbors?depth=5&relation_type=knows")).Should().BeEquivalentTo("a", "b", "c", "d", "e");
        Names(await GetAsync("/v1/graph/entities/lonely/neighbors?depth=3")).Should().Equal("lonely");

        await (await _server.Client.GetAsync("/v1/graph/entities/ghost/neighbors")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.GetAsync("/v1/graph/entities/a/neighbors?depth=9")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "depth");
        await (await _server.Client.GetAsync("/v1/graph/entities/a/neighbors?deep=2")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "deep");

        // limit: at most that many besides the start, "truncated" only when something was left out.
        var cut = await GetAsync("/v1/graph/entities/a/neighbors?depth=5&relation_type=knows&limit=2");
        Names(cut).Should().BeEquivalentTo("a", "b", "c");
        cut.GetProperty("truncated").GetBoolean().Should().BeTrue();
        two.TryGetProperty("truncated", out _).Should().BeFalse();
        await (await _server.Client.GetAsync("/v1/graph/entities/a/neighbors?limit=0")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "limit");
    }

    [Fact]
    public async Task History_ComesInPages_WithANextCursor()
    {
        await SeedChainAsync();
        var first = await GetAsync("/v1/graph/entities/b/history?limit=1");
        first.GetProperty("items").GetArrayLength().Should().Be(1);
        var cursor = first.GetProperty("next_cursor").GetString();
        var rest = await GetAsync($"/v1/graph/entities/b/history?cursor={cursor}");
        rest.GetProperty("next_cursor").ValueKind.Should().Be(JsonValueKind.Null);
        var whole = await GetAsync("/v1/graph/entities/b/history");
        whole.GetProperty("items").GetArrayLength().Should().Be(1 + rest.GetProperty("items").GetArrayLength());
        rest.GetProperty("items")[0].GetProperty("seq").GetInt64().Should().Be(whole.GetProperty("items")[1].GetProperty("seq").GetInt64());
        await (await _server.Client.GetAsync("/v1/graph/entities/b/history?cursor=abc")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "cursor");
        await (await _server.Client.GetAsync("/v1/graph/entities/b/history?limit=10001")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "limit");
    }

    [Theory]
    [InlineData("5")]
    [InlineData("true")]
    [InlineData("[\"nested\"]")]
    public async Task An_observation_neither_string_nor_object_is_a_400_naming_the_observations(string observation)
    {
        // Before, the converter's nested read lost the path: "the body must be a JSON object", field "body".
        var created = await _server.PostJsonAsync("/v1/graph/entities", $$"""{"entities":[{"name":"a","entity_type":"t","observations":[{{observation}}]}]}""");
        (await created.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities[0].observations")).GetProperty("detail").GetString()
            .Should().Contain("an observation is a string or an object");
        await PostAsync("/v1/graph/entities", """{"entities":[{"name":"a","entity_type":"t"}]}""");
        var added = await _server.PostJsonAsync("/v1/graph/observations", $$"""{"observations":[{"entity_name":"a","contents":[{{observation}}]}]}""");
        await added.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "observations[0].contents");
    }

    [Fact]
    public async Task A_name_sent_decomposed_names_the_entity_written_precomposed()
    {
        // "José" with U+00E9, then with e + U+0301: one entity (NFC), reached by either spelling in bodies and paths.
        await PostAsync("/v1/graph/entities", """{"entities":[{"name":"Jos\u00e9","entity_type":"person"},{"name":"Ann","entity_type":"person"}]}""");
        (await PostAsync("/v1/graph/entities", """{"entities":[{"name":"Jose\u0301","entity_type":"person"}]}""")).GetProperty("entities").GetArrayLength()
            .Should().Be(0, "the name exists");
        await PostAsync("/v1/graph/relations", """{"relations":[{"from":"Jose\u0301","to":"Ann","relation_type":"knows"}]}""");
        Names(await GetAsync("/v1/graph")).Should().Equal("Jos\u00e9", "Ann");
        Names(await GetAsync("/v1/graph/entities/Jose%CC%81/neighbors")).Should().Equal("Jos\u00e9", "Ann");
        Edges(await GetAsync("/v1/graph/path?from=Ann&to=Jose%CC%81")).Should().Equal("Jos\u00e9-knows->Ann");
    }

    [Fact]
    public async Task Path_IsShortest_InOrder_Or404()
    {
        await SeedChainAsync();
        var path = await GetAsync("/v1/graph/path?from=x&to=e");
        Names(path).Should().Equal("x", "a", "b", "c", "d", "e");
        Edges(path).Should().Equal("a-likes->x", "a-knows->b", "c-knows->b", "c-knows->d", "d-knows->e");
        Names(await GetAsync("/v1/graph/path?from=a&to=a")).Should().Equal("a");

        await (await _server.Client.GetAsync("/v1/graph/path?from=a&to=lonely")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.GetAsync("/v1/graph/path?from=a&to=ghost")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.GetAsync("/v1/graph/path?from=a")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "to");
    }

    [Fact]
    public async Task SearchAndOpenNodes_ReturnSubgraphs()
    {
        await PostAsync("/v1/graph/entities", """
            {"entities":[{"name":"Paris","entity_type":"city","observations":["capital of France"]},
                         {"name":"France","entity_type":"country","observations":["in Europe"]},
                         {"name":"Lyon","entity_type":"city","observations":["food capital"]}]}
            """);
        await PostAsync("/v1/graph/relations", """{"relations":[{"from":"Paris","to":"France","relation_type":"capital_of"},{"from":"Lyon","to":"France","relation_type":"in"}]}""");

        var search = await GetAsync("/v1/graph/search?query=capital%20France");
        Names(search).Should().HaveCount(3);
        Names(search)[0].Should().BeOneOf("Paris", "France");
        Edges(await GetAsync("/v1/graph/search?query=city")).Should().BeEmpty();
        Names(await GetAsync("/v1/graph/search?query=city")).Should().BeEquivalentTo("Paris", "Lyon");

        var nodes = await GetAsync("/v1/graph/nodes?names=Paris,France,Atlantis");
        Names(nodes).Should().Equal("Paris", "France");
        Edges(nodes).Should().Equal("Paris-capital_of->France");

        await (await _server.Client.GetAsync("/v1/graph/search")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "query");
        await (await _server.Client.GetAsync("/v1/graph/nodes")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "names");
    }

    [Fact]
    public async Task IncludeInvalid_ShowsEndedFactsMarked()
    {
        var ends = EngramJsonTime(_clock.GetUtcNow().AddHours(1));
        await PostAsync("/v1/graph/entities", $$"""
            {"entities":[{"name":"Ada","entity_type":"person","observations":["likes tea",{"content":"in London","valid_to":"{{ends}}"}]},{"name":"Acme","entity_type":"org"}]}
            """);
        await PostAsync("/v1/graph/relations", $$"""{"relations":[{"from":"Ada","to":"Acme","relation_type":"works_at","valid_to":"{{ends}}"}]}""");
        Edges(await GetAsync("/v1/graph")).Should().ContainSingle();

        _clock.Advance(TimeSpan.FromHours(2));

        var current = await GetAsync("/v1/graph");
        Edges(current).Should().BeEmpty();
        current.GetProperty("entities")[0].GetProperty("observations").EnumerateArray().Select(o => o.GetString()).Should().Equal("likes tea");
        await (await _server.Client.GetAsync("/v1/graph/path?from=Ada&to=Acme")).ShouldBeProblemAsync(HttpStatusCode.NotFound);

        var all = await GetAsync("/v1/graph?include_invalid=true");
        var relation = all.GetProperty("relations")[0];
        relation.GetProperty("valid").GetBoolean().Should().BeFalse();
        relation.GetProperty("valid_to").GetString().Should().Be(ends);
        var invalid = all.GetProperty("entities")[0].GetProperty("invalid_observations")[0];
        invalid.GetProperty("content").GetString().Should().Be("in London");
        invalid.GetProperty("valid").GetBoolean().Should().BeFalse();
        Names(await GetAsync("/v1/graph/path?from=Ada&to=Acme&include_invalid=true")).Should().Equal("Ada", "Acme");
    }

    [Fact]
    public async Task BadInput_Is400NamingTheField_AndUnknownEntities404()
    {
        await PostAsync("/v1/graph/entities", """{"entities":[{"name":"Ada","entity_type":"person"}]}""");
        await (await _server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Ada","to":"Ghost","relation_type":"knows"}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "relations[0].to");
        await (await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"","entity_type":"person"}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities[0].name");
        await (await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"B"}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities[0].entity_type");
        await (await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"B","entity_type":"t","colour":"red"}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        await (await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"B","entity_type":"t","observations":[{"content":"x","valid_from":"2026-02-01T00:00:00Z","valid_to":"2026-01-01T00:00:00Z"}]}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities[0].observations[0].valid_to");
        await (await _server.PostJsonAsync("/v1/graph/observations", """{"observations":[{"entity_name":"Ghost","contents":["boo"]}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.PostJsonAsync("/v1/graph/entities/delete", """{"entity_names":[]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entity_names");
        // A failing batch is all or nothing.
        await (await _server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Ada","to":"Ada","relation_type":"is"},{"from":"Ada","to":"Ghost","relation_type":"knows"}]}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "relations[1].to");
        Edges(await GetAsync("/v1/graph")).Should().BeEmpty();
        Names(await GetAsync("/v1/graph")).Should().Equal("Ada");
    }

    [Fact]
    public async Task OpenApi_DescribesTheGraphEndpoints()
    {
        var doc = await GetAsync("/openapi/v1.json");
        var paths = doc.GetProperty("paths");
        foreach (var path in (string[])["/v1/graph", "/v1/graph/entities", "/v1/graph/relations/delete", "/v1/graph/search", "/v1/graph/path", "/v1/graph/entities/{name}/neighbors"])
        {
            paths.TryGetProperty(path, out _).Should().BeTrue(path);
        }
        doc.GetProperty("components").GetProperty("schemas").GetProperty("NewRelation").GetProperty("properties")
            .TryGetProperty("relation_type", out _).Should().BeTrue();
    }

    private static string EngramJsonTime(DateTimeOffset value) => Core.Common.EngramJson.FormatTimestamp(value);
}
