using System.Text.Json;
using Engram.Core.Common;
using ModelContextProtocol.Protocol;

namespace Engram.Server.Mcp;

/// <summary>
/// How every Engram tool answers: the result as compact JSON text (what most clients show the model)
/// and the same object as <c>structuredContent</c> (what the tool's output schema describes).
/// </summary>
public static class McpResults
{
    /// <summary>
    /// The serializer options of the tools: Engram's JSON contract (snake_case, strict numbers, unknown
    /// fields refused inside objects), used for the arguments, the output schemas and the results.
    /// Graph tools name their fields explicitly (camelCase, as the reference memory server does).
    /// </summary>
    public static JsonSerializerOptions Json { get; } = EngramJson.Options;

    /// <summary>
    /// The deepest result sent as <c>structuredContent</c>: the SDK writes it inside the JSON-RPC response (three levels
    /// more) with System.Text.Json's limit of 64. Only a value stored before <see cref="StoredJsonRules"/> bounded nesting
    /// can be deeper; such a result goes as text alone rather than failing the call.
    /// </summary>
    private const int MaxStructuredDepth = 56;

    public static CallToolResult Ok<T>(T value)
    {
        var utf8 = JsonSerializer.SerializeToUtf8Bytes(value, Json);
        UnicodeText.IsValidJson(utf8, out var depth);
        using var document = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 1024 });
        var element = document.RootElement.Clone();
        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = element.GetRawText() }],
            StructuredContent = depth <= MaxStructuredDepth ? element : null,
        };
    }
}
