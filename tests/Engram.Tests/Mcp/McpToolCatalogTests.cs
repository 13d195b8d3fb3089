using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>
/// What tools/list tells a client, checked for every tool the server lists (the memory, key-value and
/// graph tools alike): a description on the tool and on each parameter, honest annotations, an output
/// schema, and schemas the TypeScript SDK's client accepts.
/// </summary>
public sealed class McpToolCatalogTests
{
    [Fact]
    public async Task Every_tool_has_descriptions_annotations_and_an_output_schema()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var tools = await client.ListToolsAsync();

        tools.Select(t => t.Name).Should().Contain(
        [
            "memory_store", "memory_search", "memory_get", "memory_update", "memory_delete", "memory_list", "memory_history", "memory_stats",
            "kv_set", "kv_get", "kv_delete", "kv_list", "kv_cleanup", "kv_incr",
        ]);
        foreach (var tool in tools.Select(t => t.ProtocolTool))
        {
            tool.Description.Should().NotBeNullOrWhiteSpace(tool.Name);
            tool.Annotations.Should().NotBeNull(tool.Name);
            tool.Annotations!.ReadOnlyHint.Should().NotBeNull(tool.Name);
            tool.Annotations.DestructiveHint.Should().NotBeNull(tool.Name);
            tool.Annotations.IdempotentHint.Should().NotBeNull(tool.Name);
            tool.Annotations.OpenWorldHint.Should().NotBeNull(tool.Name);
            tool.OutputSchema.Should().NotBeNull(tool.Name);
            foreach (var parameter in tool.InputSchema.GetProperty("properties").EnumerateObject())
            {
                parameter.Value.TryGetProperty("description", out var description).Should().BeTrue($"{tool.Name}.{parameter.Name} has a description");
                description.GetString().Should().NotBeNullOrWhiteSpace($"{tool.Name}.{parameter.Name}");
            }
            BooleanSubschemas(tool.InputSchema).Concat(BooleanSubschemas(tool.OutputSchema!.Value))
                .Should().BeEmpty($"the TypeScript client refuses tools/list when {tool.Name} has a boolean property schema");
        }
    }

    [Fact]
    public async Task Annotations_of_the_memory_and_key_value_tools_say_what_they_do()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var byName = (await client.ListToolsAsync()).ToDictionary(t => t.Name, t => t.ProtocolTool.Annotations!);

        foreach (var readOnly in new[] { "memory_search", "memory_get", "memory_list", "memory_history", "memory_stats", "kv_get", "kv_list" })
        {
            byName[readOnly].ReadOnlyHint.Should().BeTrue(readOnly);
            byName[readOnly].DestructiveHint.Should().BeFalse(readOnly);
        }
        foreach (var destructive in new[] { "memory_delete", "memory_update", "kv_delete", "kv_cleanup", "kv_set" })
        {
            byName[destructive].ReadOnlyHint.Should().BeFalse(destructive);
            byName[destructive].DestructiveHint.Should().BeTrue(destructive);
        }
        byName["memory_store"].IdempotentHint.Should().BeFalse();
        byName["kv_incr"].IdempotentHint.Should().BeFalse();
        byName["memory_delete"].IdempotentHint.Should().BeTrue();
        byName.Values.Should().OnlyContain(a => a.OpenWorldHint == false);
    }

    /// <summary>Paths of <c>true</c>/<c>false</c> where a property or item schema is expected.</summary>
    private static IEnumerable<string> BooleanSubschemas(JsonElement schema, string path = "$")
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            yield break;
        }
        if (schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in properties.EnumerateObject())
            {
                if (property.Value.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    yield return $"{path}.properties.{property.Name}";
                }
                foreach (var inner in BooleanSubschemas(property.Value, $"{path}.properties.{property.Name}"))
                {
                    yield return inner;
                }
            }
        }
        if (schema.TryGetProperty("items", out var items))
        {
            if (items.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                yield return path + ".items";
            }
            foreach (var inner in BooleanSubschemas(items, path + ".items"))
            {
                yield return inner;
            }
        }
    }
}
