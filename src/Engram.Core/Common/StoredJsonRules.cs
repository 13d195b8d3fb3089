using System.Text.Json;

namespace Engram.Core.Common;

/// <summary>
/// The rules of a JSON value Engram keeps for a caller (memory metadata, a key-value value): every string and key valid
/// Unicode (<see cref="UnicodeText"/>), and at most <see cref="MaxDepth"/> levels of nesting. Every answer wraps the value
/// a few levels down (a listing's items, a JSON-RPC result's <c>structuredContent</c>, an export record's history), and
/// System.Text.Json's writers stop at 64 levels: a value nested as deeply as a request body may carry it (63 levels inside
/// a field) was stored, then broke every listing and MCP answer that held it.
/// </summary>
public static class StoredJsonRules
{
    /// <summary>The most levels of objects and arrays a stored value may nest (<c>{"a":{"b":1}}</c> is 2).</summary>
    public const int MaxDepth = 32;

    /// <summary>Throws a <see cref="ValidationException"/> naming <paramref name="field"/> unless the value keeps both rules.</summary>
    public static void Require(JsonElement value, string field)
    {
        if (value.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array or JsonValueKind.String))
        {
            return;
        }
        if (!UnicodeText.IsValidJson(UnicodeText.RawUtf8(value), out var depth))
        {
            UnicodeText.RequireJson(value, field); // throws, with the Unicode rule's message
        }
        if (depth > MaxDepth)
        {
            throw new ValidationException(field, $"{field} nests {depth} levels of objects and arrays; the limit is {MaxDepth}");
        }
    }
}
