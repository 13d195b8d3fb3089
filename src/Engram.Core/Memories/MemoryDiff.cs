using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;

namespace Engram.Core.Memories;

/// <summary>What history records: field-level changes of an update, or a whole snapshot.</summary>
public static class MemoryDiff
{
    // Bookkeeping fields change on every update; history states them once per entry instead.
    private static readonly HashSet<string> Bookkeeping = ["updated_at", "version", "last_accessed_at", "access_count"];

    public static JsonElement Snapshot(Memory memory) => JsonSerializer.SerializeToElement(memory, EngramJson.Options);

    /// <summary>{"field": {"from": old, "to": new}} for every field whose value differs.</summary>
    public static JsonElement Changes(Memory before, Memory after)
    {
        var from = JsonSerializer.SerializeToNode(before, EngramJson.Options)!.AsObject();
        var to = JsonSerializer.SerializeToNode(after, EngramJson.Options)!.AsObject();
        var changes = new JsonObject();
        foreach (var (name, newValue) in to)
        {
            if (Bookkeeping.Contains(name))
            {
                continue;
            }
            var oldValue = from[name];
            if (!JsonNode.DeepEquals(oldValue, newValue))
            {
                changes[name] = new JsonObject { ["from"] = oldValue?.DeepClone(), ["to"] = newValue?.DeepClone() };
            }
        }
        return JsonSerializer.SerializeToElement(changes, EngramJson.Options);
    }
}
