using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace Engram.Server.Mcp;

/// <summary>
/// Checks a call's arguments against the tool's input schema before they are bound, so that a missing,
/// misspelt or wrongly typed argument is answered with its name and what it must be. Binding would
/// refuse the same calls, but the SDK binds each argument on its own, so its errors name neither the
/// argument nor the expected type ("the arguments dictionary is missing a value…", "the JSON value
/// could not be converted…"). Types are checked at every depth the schema describes; unknown fields
/// inside objects are left to binding, whose messages name them.
/// </summary>
internal static class McpArgumentCheck
{
    /// <param name="strict">Also refuse arguments the schema does not name (<see cref="StrictArgumentsAttribute"/>).</param>
    public static void Check(Tool tool, IDictionary<string, JsonElement>? arguments, bool strict)
    {
        var schema = tool.InputSchema;
        if (!schema.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        arguments ??= new Dictionary<string, JsonElement>();
        if (schema.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.Array)
        {
            foreach (var name in required.EnumerateArray().Select(r => r.GetString()).OfType<string>())
            {
                if (!arguments.ContainsKey(name))
                {
                    throw new ArgumentException($"{name} is required");
                }
            }
        }
        foreach (var (name, value) in arguments)
        {
            if (!properties.TryGetProperty(name, out var property))
            {
                if (strict)
                {
                    var known = string.Join(", ", properties.EnumerateObject().Select(p => p.Name));
                    throw new ArgumentException($"unknown argument '{name}'; {tool.Name} takes {known}");
                }
                continue;
            }
            CheckValue(name, property, value);
        }
    }

    /// <summary>Checks a value and, in objects and arrays, what it holds, naming it by its path (filters.type, tags[0]).</summary>
    private static void CheckValue(string path, JsonElement schema, JsonElement value)
    {
        if (Mismatch(schema, value) is { } expected)
        {
            throw new ArgumentException($"{path} must be {expected} (got {Describe(value)})");
        }
        if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items) && items.ValueKind == JsonValueKind.Object)
        {
            var index = 0;
            foreach (var item in value.EnumerateArray())
            {
                if (Mismatch(items, item) is { } itemExpected)
                {
                    throw new ArgumentException($"{path} must be an array of {Plural(itemExpected)} (got {Describe(item)} at {path}[{index}])");
                }
                CheckValue($"{path}[{index}]", items, item);
                index++;
            }
        }
        if (value.ValueKind == JsonValueKind.Object && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            // Unknown fields inside an object are left to binding, which refuses them by name.
            foreach (var field in value.EnumerateObject())
            {
                if (properties.TryGetProperty(field.Name, out var fieldSchema))
                {
                    CheckValue($"{path}.{field.Name}", fieldSchema, field.Value);
                }
            }
        }
    }

    /// <summary>What the schema expects, when <paramref name="value"/> is none of its types; null when it fits (or the schema says nothing).</summary>
    private static string? Mismatch(JsonElement schema, JsonElement value)
    {
        if (!schema.TryGetProperty("type", out var type))
        {
            return null;
        }
        var types = type.ValueKind == JsonValueKind.Array
            ? type.EnumerateArray().Select(t => t.GetString()).OfType<string>().ToList()
            : type.ValueKind == JsonValueKind.String ? [type.GetString()!] : [];
        if (types.Count == 0 || types.Any(t => Fits(t, value)))
        {
            return null;
        }
        var named = types.Where(t => t != "null").Select(Name).ToList();
        return named.Count == 0 ? "null" : string.Join(" or ", named);
    }

    private static bool Fits(string type, JsonElement value) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "number" => value.ValueKind == JsonValueKind.Number,
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "array" => value.ValueKind == JsonValueKind.Array,
        "object" => value.ValueKind == JsonValueKind.Object,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => true,
    };

    private static string Name(string type) => type switch
    {
        "string" => "a string",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        "array" => "an array",
        "object" => "an object",
        _ => type,
    };

    private static string Plural(string expected) => expected switch
    {
        "a string" => "strings",
        "a whole number" => "whole numbers",
        "a number" => "numbers",
        "true or false" => "booleans",
        "an array" => "arrays",
        "an object" => "objects",
        _ => expected,
    };

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
