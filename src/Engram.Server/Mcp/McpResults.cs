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

    public static CallToolResult Ok<T>(T value)
    {
        var element = JsonSerializer.SerializeToElement(value, Json);
        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = element.GetRawText() }],
            StructuredContent = element,
        };
    }
}
