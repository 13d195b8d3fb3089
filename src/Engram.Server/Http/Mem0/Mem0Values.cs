using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Engram.Server.Http.Mem0;

/// <summary>
/// The typed values of mem0 requests, read strictly: a field given with the wrong type is a 400 naming it, never
/// skipped. Skipping one silently changed the request (<c>"infer": "false"</c> inferred, <c>"metadata": "vip"</c> stored
/// nothing, <c>"threshold": "0.9"</c> returned everything). null stays "not given", as the clients send unset options.
/// </summary>
internal static class Mem0Values
{
    /// <summary>The most a page of a mem0 listing holds (memories and entities alike).</summary>
    public const int MaxPageSize = 1000;

    public static int? Int(JsonNode? node, string field) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var d && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
        _ => throw new ValidationException(field, $"{field} must be an integer"),
    };

    public static double? Number(JsonNode? node, string field) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        _ => throw new ValidationException(field, $"{field} must be a number (got {KindOf(node)})"),
    };

    /// <summary>true or false only: mem0's platform documents these fields as booleans, and "false" or 0 are not.</summary>
    public static bool? Bool(JsonNode? node, string field) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw new ValidationException(field, $"{field} must be true or false (got {KindOf(node)})"),
    };

    public static JsonObject? ObjectValue(JsonNode? node, string field) => node switch
    {
        null => null,
        JsonObject o => o,
        _ => throw new ValidationException(field, $"{field} must be an object (got {KindOf(node)})"),
    };

    /// <summary>An integer of the query string (page, page_size); absent or empty is null.</summary>
    public static int? QueryInt(IQueryCollection query, string name)
    {
        StringValues values = query[name];
        if (values.Count == 0 || string.IsNullOrEmpty(values[^1]))
        {
            return null;
        }
        return int.TryParse(values[^1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ValidationException(name, $"{name} must be an integer");
    }

    /// <summary>The page and page size of a listing, each refused out of its range (a page size without a bound would be one page of everything).</summary>
    public static (int Page, int Size) Page(int? page, int? size, int defaultSize)
    {
        var number = page ?? 1;
        var count = size ?? defaultSize;
        if (number < 1)
        {
            throw new ValidationException("page", "page must be 1 or more");
        }
        if (size is < 1 or > MaxPageSize)
        {
            throw new ValidationException("page_size", $"page_size must be between 1 and {MaxPageSize}");
        }
        return (number, count);
    }

    public static string KindOf(JsonNode? node) => node is null ? "null" : KindOf(node.GetValueKind());

    public static string KindOf(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.String => "a string",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
