using System.Buffers.Text;
using System.Text.Json;

namespace Engram.Core.Common;

/// <summary>
/// The rules of a JSON value Engram keeps for a caller (memory metadata, a key-value value), the same on both stores:
/// <list type="bullet">
/// <item>every string and key valid Unicode (<see cref="UnicodeText"/>) without a NUL character (<c>\u0000</c>), which
/// PostgreSQL's jsonb refuses (metadata is jsonb there; a key-value value is kept as JSON text on both stores, and a value
/// written over RESP is bytes that may hold NUL, so key-value values may hold it);</item>
/// <item>every number one a double holds, neither overflowing (<c>1e400</c>) nor underflowing (<c>1e-400</c>): JSON's
/// interoperable range (RFC 8259), and PostgreSQL's numeric stops at far smaller exponents than the text allows;</item>
/// <item>at most <see cref="MaxDepth"/> levels of nesting. Every answer wraps the value a few levels down (a listing's
/// items, a JSON-RPC result's <c>structuredContent</c>, an export record's history), and System.Text.Json's writers stop
/// at 64 levels: a value nested as deeply as a request body may carry it (63 levels inside a field) was stored, then
/// broke every listing and MCP answer that held it.</item>
/// </list>
/// </summary>
public static class StoredJsonRules
{
    /// <summary>The most levels of objects and arrays a stored value may nest (<c>{"a":{"b":1}}</c> is 2).</summary>
    public const int MaxDepth = 32;

    /// <summary>Throws a <see cref="ValidationException"/> naming <paramref name="field"/> unless the value keeps the rules.</summary>
    /// <param name="nulAllowed">A key-value value: <c>\u0000</c> in its strings is kept (see above).</param>
    public static void Require(JsonElement value, string field, bool nulAllowed = false)
    {
        if (value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.True or JsonValueKind.False)
        {
            return;
        }
        var reader = new Utf8JsonReader(UnicodeText.RawUtf8(value), new JsonReaderOptions { MaxDepth = 1024 });
        var depth = 0;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject or JsonTokenType.StartArray:
                    depth = Math.Max(depth, reader.CurrentDepth + 1);
                    break;
                case JsonTokenType.String or JsonTokenType.PropertyName:
                    if (!UnicodeText.IsValidJsonString(reader.ValueSpan, reader.ValueIsEscaped))
                    {
                        UnicodeText.RequireJson(value, field); // throws, with the Unicode rule's message
                    }
                    if (!nulAllowed && reader.ValueIsEscaped && reader.ValueSpan.IndexOf("u0000"u8) >= 0 && reader.GetString()!.Contains('\0'))
                    {
                        throw UnicodeText.HoldsNul(field);
                    }
                    break;
                case JsonTokenType.Number when !FitsDouble(reader.ValueSpan):
                    throw new ValidationException(field,
                        $"{field} holds the number {Shown(reader.ValueSpan)}, beyond what a double holds (about ±1.8e308, and no closer to 0 than about ±4.9e-324)");
            }
        }
        if (depth > MaxDepth)
        {
            throw new ValidationException(field, $"{field} nests {depth} levels of objects and arrays; the limit is {MaxDepth}");
        }
    }

    /// <summary>A JSON number's text parses to a finite double that is not 0 unless the text is a zero.</summary>
    private static bool FitsDouble(ReadOnlySpan<byte> number)
    {
        if (!Utf8Parser.TryParse(number, out double value, out var consumed) || consumed != number.Length || !double.IsFinite(value))
        {
            return false;
        }
        if (value != 0)
        {
            return true;
        }
        var mantissa = number;
        var exponent = number.IndexOfAny("eE"u8);
        if (exponent >= 0)
        {
            mantissa = number[..exponent];
        }
        return mantissa.IndexOfAnyInRange((byte)'1', (byte)'9') < 0;
    }

    private static string Shown(ReadOnlySpan<byte> number) =>
        number.Length <= 24 ? System.Text.Encoding.ASCII.GetString(number) : System.Text.Encoding.ASCII.GetString(number[..24]) + "…";
}
