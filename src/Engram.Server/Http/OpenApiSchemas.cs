using System.Text.Json.Nodes;
using Engram.Core.Memories;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Engram.Server.Http;

/// <summary>Schemas the generator cannot see through a custom converter, stated by hand.</summary>
internal static class OpenApiSchemas
{
    public static Task DescribeCustomConverters(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        if (context.JsonTypeInfo.Type == typeof(MemoryTier))
        {
            schema.Type = JsonSchemaType.String;
            schema.Enum = [.. Enum.GetValues<MemoryTier>().Select(t => (JsonNode)JsonValue.Create(t.ToWire()))];
        }
        return Task.CompletedTask;
    }
}
