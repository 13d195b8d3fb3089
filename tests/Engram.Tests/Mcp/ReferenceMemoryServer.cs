using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Engram.Tests.Mcp;

/// <summary>
/// The real MCP reference memory server (@modelcontextprotocol/server-memory from npm, installed in
/// tests/node by test.sh) started with node over stdio, writing its memory.jsonl where the test says.
/// </summary>
public static class ReferenceMemoryServer
{
    /// <summary>The server's entry point, found by walking up from the test binaries to the repository's tests/node.</summary>
    public static string EntryPoint { get; } = Locate();

    public static Task<McpClient> ConnectAsync(string memoryFilePath)
    {
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "server-memory",
            Command = "node",
            Arguments = [EntryPoint],
            EnvironmentVariables = new Dictionary<string, string?> { ["MEMORY_FILE_PATH"] = memoryFilePath },
        });
        return McpClient.CreateAsync(transport);
    }

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "node", "node_modules", "@modelcontextprotocol", "server-memory", "dist", "index.js");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException("the reference memory server is not installed: run (cd tests/node && npm ci) or ./test.sh");
    }
}

/// <summary>Comparing JSON of two servers.</summary>
public static class JsonCompare
{
    public static JsonNode? Node(JsonElement element) => JsonNode.Parse(element.GetRawText());

    public static void ShouldEqualJson(this JsonElement actual, JsonElement expected, string because) =>
        JsonNode.DeepEquals(Node(actual), Node(expected)).Should().BeTrue(
            "{0}: expected {1} but got {2}", because, expected.GetRawText(), actual.GetRawText());

    /// <summary>The result's structured content, which the harness rule also wants equal to its text parsed.</summary>
    public static JsonElement StructuredMatchingText(this CallToolResult result)
    {
        var structured = result.StructuredContent ?? throw new InvalidOperationException("no structuredContent: " + result.Content.OfType<TextContentBlock>().FirstOrDefault()?.Text);
        var text = result.Content.OfType<TextContentBlock>().Single().Text;
        JsonNode.DeepEquals(JsonNode.Parse(text), Node(structured)).Should().BeTrue("the text content is the structured content as JSON: {0}", text);
        return structured;
    }
}
