using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Tests.Support;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Engram.Tests.Mcp;

/// <summary>
/// The drop-in promise: a realistic session of graph tool calls, run against the real reference memory
/// server and replayed against Engram (over Streamable HTTP and over stdio), gives the same results call by
/// call and the same graph at the end; and the tools take and describe the same argument and result shapes.
/// </summary>
public sealed class GraphDropInTests
{
    private enum Compare
    {
        /// <summary>structuredContent equal.</summary>
        Exact,

        /// <summary>Same entities in any order (search ranks best first, the reference keeps graph order), relations equal.</summary>
        EntitiesAsSet,

        /// <summary>Both an error.</summary>
        BothErrors,
    }

    private static readonly (string Tool, string Args, Compare How)[] Script =
    [
        ("create_entities", """{"entities":[{"name":"Alice","entityType":"person","observations":["Works as a backend engineer","Prefers dark mode"]},{"name":"Acme","entityType":"organization","observations":["Builds billing software"]},{"name":"Billing","entityType":"project","observations":["Written in C#"]}]}""", Compare.Exact),
        ("create_entities", """{"entities":[{"name":"Alice","entityType":"robot","observations":["ignored: the name exists"]},{"name":"Bob","entityType":"person","observations":["Joined in March"]}]}""", Compare.Exact),
        ("create_relations", """{"relations":[{"from":"Alice","to":"Acme","relationType":"works_at"},{"from":"Bob","to":"Acme","relationType":"works_at"},{"from":"Alice","to":"Billing","relationType":"leads"},{"from":"Acme","to":"Billing","relationType":"owns"}]}""", Compare.Exact),
        ("create_relations", """{"relations":[{"from":"Alice","to":"Acme","relationType":"works_at"},{"from":"Bob","to":"Billing","relationType":"contributes_to"}]}""", Compare.Exact),
        ("add_observations", """{"observations":[{"entityName":"Alice","contents":["Speaks Portuguese","Prefers dark mode"]},{"entityName":"Billing","contents":["Deployed on Fridays"]}]}""", Compare.Exact),
        ("add_observations", """{"observations":[{"entityName":"Nobody","contents":["never stored"]}]}""", Compare.BothErrors),
        ("delete_observations", """{"deletions":[{"entityName":"Alice","observations":["Prefers dark mode"]},{"entityName":"Billing","observations":["not an observation it has"]}]}""", Compare.Exact),
        ("open_nodes", """{"names":["Acme","Bob","Nobody"]}""", Compare.Exact),
        ("search_nodes", """{"query":"engineer"}""", Compare.Exact),
        ("search_nodes", """{"query":"billing"}""", Compare.EntitiesAsSet),
        ("delete_relations", """{"relations":[{"from":"Bob","to":"Billing","relationType":"contributes_to"},{"from":"Acme","to":"Alice","relationType":"owns"}]}""", Compare.Exact),
        ("create_entities", """{"entities":[{"name":"Carol","entityType":"person","observations":[]}]}""", Compare.Exact),
        ("create_relations", """{"relations":[{"from":"Carol","to":"Alice","relationType":"mentors"},{"from":"Bob","to":"Carol","relationType":"knows"}]}""", Compare.Exact),
        ("delete_entities", """{"entityNames":["Bob","Nobody"]}""", Compare.Exact),
        ("add_observations", """{"observations":[{"entityName":"Carol","contents":["Based in Lisbon"]}]}""", Compare.Exact),
        ("read_graph", "{}", Compare.Exact),
    ];

    [Fact]
    public async Task A_session_recorded_against_the_reference_server_replays_identically_over_http_and_stdio()
    {
        using var folder = new TempDirectory();
        var memoryFile = Path.Combine(folder.Path, "memory.jsonl");
        List<CallToolResult> recorded;
        JsonElement referenceResource;
        await using (var reference = await ReferenceMemoryServer.ConnectAsync(memoryFile))
        {
            recorded = await RunAsync(reference);
            referenceResource = await ReadResourceAsync(reference);
        }

        await using var server = await EngramServer.StartAsync();
        await using (var http = await McpConnections.ConnectHttpAsync(server))
        {
            Replay("HTTP", recorded, await RunAsync(http));
            (await ReadResourceAsync(http)).ShouldEqualJson(referenceResource, "memory://knowledge-graph over HTTP");
        }
        using var data = new TempDirectory();
        await using (var stdio = await McpConnections.ConnectStdioAsync(["--data", data.Path]))
        {
            Replay("stdio", recorded, await RunAsync(stdio));
            (await ReadResourceAsync(stdio)).ShouldEqualJson(referenceResource, "memory://knowledge-graph over stdio");
        }
    }

    [Fact]
    public async Task The_graph_tools_take_and_return_the_reference_servers_shapes_with_annotations()
    {
        using var folder = new TempDirectory();
        IList<McpClientTool> referenceTools;
        await using (var reference = await ReferenceMemoryServer.ConnectAsync(Path.Combine(folder.Path, "memory.jsonl")))
        {
            referenceTools = await reference.ListToolsAsync();
        }
        await using var server = await EngramServer.StartAsync();
        await using var engram = await McpConnections.ConnectHttpAsync(server);
        var ours = (await engram.ListToolsAsync()).ToDictionary(t => t.Name);

        referenceTools.Should().HaveCount(9);
        foreach (var theirs in referenceTools.Select(t => t.ProtocolTool))
        {
            ours.Should().ContainKey(theirs.Name);
            var mine = ours[theirs.Name].ProtocolTool;
            Shape(mine.InputSchema).Should().BeEquivalentTo(Shape(theirs.InputSchema), $"{theirs.Name} takes the reference's arguments");
            mine.OutputSchema.Should().NotBeNull($"{theirs.Name} declares an output schema");
            Shape(mine.OutputSchema!.Value).Should().BeEquivalentTo(Shape(theirs.OutputSchema!.Value), $"{theirs.Name} returns the reference's shape");
            mine.Description.Should().NotBeNullOrWhiteSpace();
            mine.Annotations.Should().NotBeNull();
            mine.Annotations!.ReadOnlyHint.Should().Be(theirs.Annotations!.ReadOnlyHint, theirs.Name);
            mine.Annotations.DestructiveHint.Should().Be(theirs.Annotations.DestructiveHint, theirs.Name);
            mine.Annotations.OpenWorldHint.Should().Be(false);
            mine.Annotations.IdempotentHint.Should().BeTrue($"{theirs.Name}: repeating it changes nothing more in Engram");
        }
        var resources = await engram.ListResourcesAsync();
        resources.Select(r => r.Uri).Should().Contain("memory://knowledge-graph");
    }

    private static async Task<List<CallToolResult>> RunAsync(McpClient client)
    {
        var results = new List<CallToolResult>();
        foreach (var (tool, args, _) in Script)
        {
            results.Add(await client.CallAsync(tool, args));
        }
        return results;
    }

    private static void Replay(string transport, List<CallToolResult> recorded, List<CallToolResult> replayed)
    {
        for (var i = 0; i < Script.Length; i++)
        {
            var (tool, args, how) = Script[i];
            var step = $"{transport} step {i + 1} ({tool} {args})";
            var expected = recorded[i];
            var actual = replayed[i];
            if (how == Compare.BothErrors)
            {
                expected.IsError.Should().BeTrue(step);
                actual.IsError.Should().BeTrue(step);
                actual.Text().Should().NotBeNullOrWhiteSpace(step);
                continue;
            }
            expected.IsError.Should().NotBe(true, step);
            var theirs = expected.StructuredContent!.Value;
            var ours = actual.StructuredMatchingText();
            if (how == Compare.Exact)
            {
                ours.ShouldEqualJson(theirs, step);
                continue;
            }
            Names(ours).Should().BeEquivalentTo(Names(theirs), step);
            ours.GetProperty("relations").ShouldEqualJson(theirs.GetProperty("relations"), step);
        }
    }

    private static async Task<JsonElement> ReadResourceAsync(McpClient client)
    {
        var read = await client.ReadResourceAsync("memory://knowledge-graph");
        var contents = read.Contents.OfType<TextResourceContents>().Single();
        contents.MimeType.Should().Be("application/json");
        using var document = JsonDocument.Parse(contents.Text);
        return document.RootElement.Clone();
    }

    private static List<string> Names(JsonElement graph) =>
        [.. graph.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()!)];

    /// <summary>A schema's property names, nested through arrays and objects, with what is required: "entities[].entityType!".</summary>
    private static List<string> Shape(JsonElement schema, string prefix = "")
    {
        var shape = new List<string>();
        if (schema.TryGetProperty("items", out var items))
        {
            shape.AddRange(Shape(items, prefix + "[]"));
        }
        if (!schema.TryGetProperty("properties", out var properties))
        {
            return shape;
        }
        var required = schema.TryGetProperty("required", out var r) ? r.EnumerateArray().Select(x => x.GetString()).ToHashSet() : [];
        foreach (var property in properties.EnumerateObject())
        {
            var path = prefix.Length == 0 ? property.Name : prefix + "." + property.Name;
            shape.Add(path + (required.Contains(property.Name) ? "!" : ""));
            shape.AddRange(Shape(property.Value, path));
        }
        return shape;
    }
}
