using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>
/// <c>engram import --format mcp-memory FILE</c> on a memory.jsonl written by the real reference memory
/// server: the graph read back from Engram is the reference's, a second import adds nothing, and bad input
/// is a user error naming the line.
/// </summary>
public sealed class McpMemoryImportTests
{
    [Fact]
    public async Task A_file_written_by_the_reference_server_imports_to_the_same_graph_and_again_changes_nothing()
    {
        using var folder = new TempDirectory();
        var (file, expected) = await WriteReferenceFileAsync(folder.Path);
        using var data = new TempDirectory();

        var first = await CliProcess.RunAsync(["import", "--format", "mcp-memory", file, "--data", data.Path, "--json"]);

        first.ExitCode.Should().Be(0, first.ToString());
        var report = first.Json();
        report.GetProperty("entities_created").GetInt32().Should().Be(3);
        report.GetProperty("observations_added").GetInt32().Should().Be(5);
        report.GetProperty("relations_created").GetInt32().Should().Be(2);
        var skipped = report.GetProperty("relations_skipped");
        skipped.GetArrayLength().Should().Be(1, "the reference server stored a relation to an entity that does not exist");
        skipped[0].GetProperty("to").GetString().Should().Be("Nobody");
        skipped[0].GetProperty("line").GetInt32().Should().Be(6);

        await using (var engram = await McpConnections.ConnectStdioAsync(["--data", data.Path]))
        {
            var graph = (await engram.CallAsync("read_graph", "{}")).Structured();
            graph.ShouldEqualJson(expected, "the imported graph is the reference's, less the relation Engram refuses");
        }

        var again = await CliProcess.RunAsync(["import", "--format", "mcp-memory", file, "--data", data.Path]);
        again.ExitCode.Should().Be(0, again.ToString());
        again.Stdout.Should().Contain("0 entities created (3 already there), 0 observations added, 0 relations created (2 already there, 1 skipped)");
        again.Stderr.Should().Contain("line 6").And.Contain("no entity named 'Nobody'");
    }

    [Fact]
    public async Task With_server_it_imports_over_rest_into_the_tenant_named_and_merges_into_existing_entities()
    {
        using var folder = new TempDirectory();
        var (file, _) = await WriteReferenceFileAsync(folder.Path);
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("ops", Core.Security.Role.Admin);
        var acme = server.ClientWithKey(key, tenant: "acme");
        (await acme.PostAsync("/v1/graph/entities", Json("""{"entities":[{"name":"Alice","entity_type":"person","observations":["Already known"]}]}"""))).EnsureSuccessStatusCode();

        var result = await CliProcess.RunAsync(["import", "--format", "mcp-memory", file, "--server", server.BaseAddress.ToString(), "--tenant", "acme"],
            environment: new Dictionary<string, string> { ["ENGRAM_API_KEY"] = key });

        result.ExitCode.Should().Be(0, result.ToString());
        result.Stdout.Should().Contain("2 entities created (1 already there)");
        var graph = await (await acme.GetAsync("/v1/graph")).JsonAsync();
        var alice = graph.GetProperty("entities").EnumerateArray().Single(e => e.GetProperty("name").GetString() == "Alice");
        alice.GetProperty("observations").EnumerateArray().Select(o => o.GetString()).Should()
            .Equal("Already known", "Works as a backend engineer", "Speaks Portuguese");
        var own = await (await server.ClientWithKey(key).GetAsync("/v1/graph")).JsonAsync();
        own.GetProperty("entities").GetArrayLength().Should().Be(0, "the key's own tenant was not named");
    }

    [Theory]
    [InlineData("{\"type\":\"entity\",\"name\":\"Ann\",\"entityType\":\"person\",\"observations\":[]}\n\n{\"type\":\"entity\",\"name\":\"Bo\"", "line 3: not valid JSON")]
    [InlineData("{\"type\":\"entity\",\"name\":\" \",\"entityType\":\"person\",\"observations\":[]}", "line 1: name is required")]
    [InlineData("{\"type\":\"entity\",\"name\":\"Ann\",\"entityType\":\"person\",\"observations\":[1]}", "line 1: observations[0] must be a string")]
    [InlineData("{\"type\":\"memory\",\"name\":\"Ann\"}", "line 1: type must be \"entity\" or \"relation\"")]
    [InlineData("[1,2]", "line 1: a line must be a JSON object")]
    [InlineData("{\"type\":\"relation\",\"from\":\"Ann\",\"to\":\"Bo\"}", "line 1: relationType is missing")]
    public async Task A_bad_line_is_a_user_error_naming_it_and_nothing_is_written(string content, string expected)
    {
        using var folder = new TempDirectory();
        var file = Path.Combine(folder.Path, "memory.jsonl");
        await File.WriteAllTextAsync(file, content);
        using var data = new TempDirectory();

        var result = await CliProcess.RunAsync(["import", "--format", "mcp-memory", file, "--data", data.Path]);

        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: ").And.Contain(expected);
        File.Exists(Path.Combine(data.Path, "engram.db")).Should().BeFalse("a bad file creates no store");
    }

    [Fact]
    public async Task An_unknown_format_or_a_missing_file_is_a_user_error()
    {
        using var data = new TempDirectory();
        var format = await CliProcess.RunAsync(["import", "--format", "mem0", "x.jsonl", "--data", data.Path]);
        format.ExitCode.Should().Be(1, format.ToString());
        format.Stderr.Should().Contain("unknown --format 'mem0'; the formats are: engram, mcp-memory");

        var missing = await CliProcess.RunAsync(["import", "--format", "mcp-memory", Path.Combine(data.Path, "none.jsonl"), "--data", data.Path]);
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Contain("no file");
    }

    /// <summary>
    /// Drives the reference server to write its memory.jsonl (including what Engram treats differently: a repeated
    /// observation, a relation to no entity); returns the file and the graph Engram should hold after importing it.
    /// </summary>
    private static async Task<(string File, JsonElement Expected)> WriteReferenceFileAsync(string folder)
    {
        var file = Path.Combine(folder, "memory.jsonl");
        JsonElement graph;
        await using (var reference = await ReferenceMemoryServer.ConnectAsync(file))
        {
            await reference.CallAsync("create_entities", """{"entities":[{"name":"Alice","entityType":"person","observations":["Works as a backend engineer","Prefers dark mode"]},{"name":"Acme","entityType":"organization","observations":["Builds billing software"]},{"name":"Bob","entityType":"person","observations":[]}]}""");
            await reference.CallAsync("create_relations", """{"relations":[{"from":"Alice","to":"Acme","relationType":"works_at"},{"from":"Bob","to":"Acme","relationType":"works_at"},{"from":"Alice","to":"Nobody","relationType":"knows"}]}""");
            await reference.CallAsync("add_observations", """{"observations":[{"entityName":"Alice","contents":["Speaks Portuguese"]},{"entityName":"Bob","contents":["Joined in March"]}]}""");
            await reference.CallAsync("delete_observations", """{"deletions":[{"entityName":"Alice","observations":["Prefers dark mode"]}]}""");
            await reference.CallAsync("add_observations", """{"observations":[{"entityName":"Acme","contents":["Based in Porto"]}]}""");
            graph = (await reference.CallAsync("read_graph", "{}")).StructuredContent!.Value;
        }
        var expected = JsonNode.Parse(graph.GetRawText())!.AsObject();
        var relations = expected["relations"]!.AsArray();
        relations.Remove(relations.Single(r => (string?)r!["to"] == "Nobody"));
        return (file, JsonSerializer.SerializeToElement(expected));
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
