using System.Text.Json;

namespace Engram.Server.Mcp;

/// <summary>
/// The JSON-RPC envelope of an MCP message, checked before the SDK's transports read it (both stdio's lines and the
/// HTTP endpoint's bodies). Text that is not JSON is -32700, as JSON-RPC says (the HTTP transport answered -32600 with
/// the JSON reader's words); an envelope the SDK cannot map (not an object, a batch, no <c>"jsonrpc": "2.0"</c>, a
/// method that is not a string, an id that is not a string, an integer or null) is -32600 saying which, where the SDK
/// named .NET types ("could not be converted to ModelContextProtocol.Protocol.JsonRpcMessage") or, on stdio, said nothing.
/// </summary>
internal static class JsonRpcEnvelope
{
    public const int ParseError = -32700;
    public const int InvalidRequest = -32600;

    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64 };

    /// <summary>Why <paramref name="message"/> cannot be a JSON-RPC message (code and text), or null when it may be one.</summary>
    /// <param name="what">What the message came as, for the parse error: "the line", "the body".</param>
    public static (int Code, string Message)? Refusal(ReadOnlyMemory<byte> message, string what)
    {
        try
        {
            using var document = JsonDocument.Parse(message, Options);
            return Refusal(document.RootElement);
        }
        catch (JsonException ex)
        {
            return NotJson(ex, what);
        }
    }

    /// <summary>As <see cref="Refusal(ReadOnlyMemory{byte}, string)"/>, reading <paramref name="message"/> to its end.</summary>
    public static async Task<(int Code, string Message)?> RefusalAsync(Stream message, string what, CancellationToken ct)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(message, Options, ct).ConfigureAwait(false);
            return Refusal(document.RootElement);
        }
        catch (JsonException ex)
        {
            return NotJson(ex, what);
        }
    }

    private static (int Code, string Message) NotJson(JsonException exception, string what) =>
        (ParseError, $"Parse error: {what} is not JSON (" + exception.Message.Split(" Path:")[0].Split(" LineNumber:")[0].TrimEnd('.', ' ') + ")");

    private static (int Code, string Message)? Refusal(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (InvalidRequest, $"Invalid Request: a message is one JSON object, not {Kind(root.ValueKind)}"
                + (root.ValueKind == JsonValueKind.Array ? " (batches are not part of MCP)" : ""));
        }
        if (!root.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || !IsVersion2(version))
        {
            return (InvalidRequest, "Invalid Request: jsonrpc must be the string 2.0");
        }
        if (root.TryGetProperty("method", out var method) && method.ValueKind != JsonValueKind.String)
        {
            return (InvalidRequest, $"Invalid Request: method must be a string, not {Kind(method.ValueKind)}");
        }
        if (root.TryGetProperty("id", out var id)
            && !(id.ValueKind is JsonValueKind.String or JsonValueKind.Null || (id.ValueKind == JsonValueKind.Number && id.TryGetInt64(out _))))
        {
            return (InvalidRequest, $"Invalid Request: id must be a string, an integer or null, not {(id.ValueKind == JsonValueKind.Number ? "a fraction or a number past 64 bits" : Kind(id.ValueKind))}");
        }
        return null;
    }

    /// <summary>Whether the string is "2.0"; a string holding a lone surrogate escape (which cannot be compared: the reader throws) is not.</summary>
    private static bool IsVersion2(JsonElement version)
    {
        try
        {
            return version.ValueEquals("2.0"u8);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>The error response to a refused message: id null, as JSON-RPC says when the id could not be read.</summary>
    public static string Error(int code, string message) =>
        JsonSerializer.Serialize(new { jsonrpc = "2.0", id = (string?)null, error = new { code, message } });

    private static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
