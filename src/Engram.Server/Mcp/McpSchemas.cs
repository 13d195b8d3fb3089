using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// Makes the tools' schemas readable by every client. The SDK writes <c>true</c> (any value) for a
/// property whose type a custom converter owns (timestamps, tiers, metadata, key-value values); that is
/// valid JSON Schema, but the TypeScript SDK's client refuses a <c>tools/list</c> answer holding a
/// boolean where it expects a property schema, so such subschemas are written as <c>{}</c> (the same
/// meaning).
/// </summary>
internal static class McpSchemas
{
    /// <summary>Rewrites the input and output schemas of every registered tool once, when the server options are built.</summary>
    public static void AddSchemaCleanup(this IServiceCollection services) =>
        services.PostConfigure<McpServerOptions>(options =>
        {
            foreach (var tool in options.ToolCollection ?? [])
            {
                tool.ProtocolTool.InputSchema = WithoutBooleanSubschemas(tool.ProtocolTool.InputSchema);
                if (tool.ProtocolTool.OutputSchema is { } output)
                {
                    tool.ProtocolTool.OutputSchema = WithoutBooleanSubschemas(output);
                }
            }
        });

    public static JsonElement WithoutBooleanSubschemas(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            return schema;
        }
        var node = JsonNode.Parse(schema.GetRawText())!;
        Rewrite(node);
        return JsonSerializer.SerializeToElement(node);
    }

    private static void Rewrite(JsonNode? node)
    {
        if (node is JsonObject schema)
        {
            if (schema["properties"] is JsonObject properties)
            {
                foreach (var name in properties.Select(p => p.Key).ToList())
                {
                    ReplaceTrue(properties, name);
                }
            }
            ReplaceTrue(schema, "items");
            ReplaceTrue(schema, "additionalProperties");
            foreach (var (_, child) in schema.ToList())
            {
                Rewrite(child);
            }
        }
        else if (node is JsonArray array)
        {
            foreach (var child in array)
            {
                Rewrite(child);
            }
        }
    }

    private static void ReplaceTrue(JsonObject parent, string name)
    {
        if (parent[name] is JsonValue value && value.GetValueKind() == JsonValueKind.True)
        {
            parent[name] = new JsonObject();
        }
    }
}
