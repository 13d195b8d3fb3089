using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Engram.Tests.Support;

/// <summary>
/// The official C# MCP client (the SDK's <see cref="McpClient"/>) connected to a real Engram: over
/// Streamable HTTP to a test server's <c>/mcp</c>, or over stdio to a real <c>engram mcp</c> process.
/// </summary>
public static class McpConnections
{
    private static readonly string EngramDll = Path.Combine(AppContext.BaseDirectory, "engram.dll");

    /// <summary>A client over HTTP; <paramref name="apiKey"/> goes in <c>Authorization: Bearer</c>.</summary>
    public static Task<McpClient> ConnectHttpAsync(EngramServer server, string? apiKey = null, IDictionary<string, string>? headers = null,
        McpClientOptions? options = null)
    {
        var allHeaders = new Dictionary<string, string>(headers ?? new Dictionary<string, string>());
        if (apiKey is not null)
        {
            allHeaders["Authorization"] = "Bearer " + apiKey;
        }
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(server.BaseAddress, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = allHeaders,
        });
        return McpClient.CreateAsync(transport, options);
    }

    /// <summary>A client over stdio to <c>engram mcp</c> started with <paramref name="args"/> (e.g. --data DIR).</summary>
    public static Task<McpClient> ConnectStdioAsync(IReadOnlyList<string> args, IDictionary<string, string?>? environment = null, McpClientOptions? options = null)
    {
        var env = new Dictionary<string, string?> { ["ENGRAM_DATA"] = null, ["ENGRAM_SERVER"] = null, ["ENGRAM_API_KEY"] = null };
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            env[key] = value;
        }
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "engram",
            Command = "dotnet",
            Arguments = [EngramDll, "mcp", .. args],
            EnvironmentVariables = env,
        });
        return McpClient.CreateAsync(transport, options);
    }

    /// <summary>Calls a tool with arguments given as a JSON object text.</summary>
    public static ValueTask<CallToolResult> CallAsync(this McpClient client, string tool, string argumentsJson)
    {
        var arguments = JsonSerializer.Deserialize<Dictionary<string, object?>>(argumentsJson) ?? [];
        return client.CallToolAsync(tool, arguments);
    }

    /// <summary>The text of a result's first content block.</summary>
    public static string Text(this CallToolResult result) =>
        result.Content.OfType<TextContentBlock>().FirstOrDefault()?.Text ?? "";

    /// <summary>The structured content of a successful result; fails the test with the error text otherwise.</summary>
    public static JsonElement Structured(this CallToolResult result)
    {
        result.IsError.Should().NotBe(true, "the tool answered with an error: {0}", result.Text());
        result.StructuredContent.Should().NotBeNull();
        return result.StructuredContent!.Value;
    }
}
