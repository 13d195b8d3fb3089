using System.Text;
using System.Text.Json;

namespace Engram.Tests.Mcp;

/// <summary>One answer of <c>/mcp</c> to a raw POST: status, content type, body, and the JSON-RPC message in it (plain JSON or one SSE event).</summary>
internal sealed record McpHttpAnswer(int Status, string ContentType, string Body)
{
    public JsonElement Message
    {
        get
        {
            var json = ContentType.StartsWith("text/event-stream", StringComparison.Ordinal)
                ? string.Concat(Body.Split('\n').Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l["data:".Length..].Trim()))
                : Body;
            using var document = JsonDocument.Parse(json);
            return document.RootElement.Clone();
        }
    }

    public override string ToString() => $"{Status} {ContentType}: {Body}";
}

/// <summary>Raw POSTs to <c>/mcp</c> as a Streamable HTTP client sends them, for what the official client never sends.</summary>
internal static class McpHttpRaw
{
    public static async Task<McpHttpAnswer> PostAsync(HttpClient client, string body, IDictionary<string, string>? headers = null, string path = "/mcp")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
        request.Headers.TryAddWithoutValidation("MCP-Protocol-Version", "2025-11-25");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        using var response = await client.SendAsync(request);
        return new McpHttpAnswer((int)response.StatusCode, response.Content.Headers.ContentType?.ToString() ?? "", await response.Content.ReadAsStringAsync());
    }

    public static string ToolCall(string tool, string argumentsJson, int id = 1) =>
        $$$"""{"jsonrpc":"2.0","id":{{{id}}},"method":"tools/call","params":{"name":"{{{tool}}}","arguments":{{{argumentsJson}}}}}""";

    public const string ToolsList = """{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}""";
}
