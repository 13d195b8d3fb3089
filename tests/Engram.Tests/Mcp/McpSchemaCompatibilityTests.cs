using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>
/// Every tool's input and output schema in the shape the official TypeScript client (1.32) accepts: an object
/// schema at the root and an object (never the boolean <c>true</c>) for each property, else it refuses tools/list.
/// </summary>
public sealed class McpSchemaCompatibilityTests
{
    [Fact]
    public async Task Every_property_schema_of_every_tool_is_an_object()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var tools = await client.ListToolsAsync();
        tools.Should().NotBeEmpty();
        foreach (var tool in tools.Select(t => t.ProtocolTool))
        {
            ShouldBePortable(tool.Name + " input", tool.InputSchema);
            if (tool.OutputSchema is { } output)
            {
                ShouldBePortable(tool.Name + " output", output);
            }
        }
    }

    private static void ShouldBePortable(string what, JsonElement schema)
    {
        schema.ValueKind.Should().Be(JsonValueKind.Object, what);
        schema.GetProperty("type").GetString().Should().Be("object", what);
        if (schema.TryGetProperty("properties", out var properties))
        {
            foreach (var property in properties.EnumerateObject())
            {
                property.Value.ValueKind.Should().Be(JsonValueKind.Object, $"{what} schema of '{property.Name}': {property.Value}");
            }
        }
    }
}
