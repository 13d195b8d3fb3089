using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// Rewrites the tools' JSON schemas into the form every client accepts. The SDK describes a property whose
/// type has its own converter (an enum in snake_case, a timestamp, a free JSON value) with the boolean schema
/// <c>true</c>, which JSON Schema allows but the official TypeScript client (1.32) refuses: it rejects the
/// whole tools/list when a property's schema is not an object. <c>{}</c> means the same and passes everywhere.
/// </summary>
internal static class McpSchemaCompatibility
{
    /// <summary>Normalizes the schemas of every registered tool once, when the server's options are built.</summary>
    public static IMcpServerBuilder WithPortableSchemas(this IMcpServerBuilder builder)
    {
        builder.Services.AddSingleton<IPostConfigureOptions<McpServerOptions>, Normalizer>();
        return builder;
    }

    /// <summary>The schema with every boolean property schema (and boolean <c>items</c>) replaced by its object form.</summary>
    public static JsonElement Portable(JsonElement schema)
    {
        var node = JsonNode.Parse(schema.GetRawText());
        Rewrite(node);
        return JsonSerializer.SerializeToElement(node);
    }

    private static void Rewrite(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                if (obj["properties"] is JsonObject properties)
                {
                    foreach (var name in properties.Select(p => p.Key).ToList())
                    {
                        properties[name] = ObjectForm(properties[name]);
                    }
                }
                if (obj["items"] is JsonValue)
                {
                    obj["items"] = ObjectForm(obj["items"]);
                }
                foreach (var (_, child) in obj)
                {
                    Rewrite(child);
                }
                break;
            case JsonArray array:
                foreach (var child in array)
                {
                    Rewrite(child);
                }
                break;
        }
    }

    /// <summary><c>true</c> (anything) is <c>{}</c>, <c>false</c> (nothing) is <c>{"not": {}}</c>; other nodes stay.</summary>
    private static JsonNode? ObjectForm(JsonNode? node) => node is JsonValue value && value.GetValueKind() is JsonValueKind.True or JsonValueKind.False
        ? value.GetValueKind() == JsonValueKind.True ? new JsonObject() : new JsonObject { ["not"] = new JsonObject() }
        : node?.DeepClone();

    private sealed class Normalizer : IPostConfigureOptions<McpServerOptions>
    {
        public void PostConfigure(string? name, McpServerOptions options)
        {
            foreach (var tool in options.ToolCollection ?? [])
            {
                var protocol = tool.ProtocolTool;
                protocol.InputSchema = Portable(protocol.InputSchema);
                if (protocol.OutputSchema is { } output)
                {
                    protocol.OutputSchema = Portable(output);
                }
            }
        }
    }
}
