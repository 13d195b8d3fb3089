using System.Buffers.Text;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Engram.Server.Resp;

/// <summary>
/// RESP values are bytes, key-value entries hold JSON. A value written over RESP is stored as a JSON
/// string of its (UTF-8) text, except a canonical 64-bit integer (<c>42</c>, <c>-7</c>), which is stored as
/// a JSON number so that INCR and REST see a number. Read back over RESP, a JSON string gives its text and
/// any other JSON value its JSON text, so a value written as JSON over REST reads as that JSON.
/// </summary>
internal static class RespValues
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The JSON text for <paramref name="value"/>; null when the bytes are not UTF-8.</summary>
    public static string? ToJson(ReadOnlySpan<byte> value)
    {
        if (IsCanonicalInteger(value))
        {
            return Encoding.ASCII.GetString(value);
        }
        if (!RespWriter.IsUtf8(value))
        {
            return null;
        }
        if (value.IndexOfAnyInRange((byte)0, (byte)0x1F) < 0 && value.IndexOfAny((byte)'"', (byte)'\\') < 0)
        {
            // Nothing to escape: the text between two quotes.
            var buffer = value.Length <= 1024 ? stackalloc char[value.Length + 2] : new char[value.Length + 2];
            buffer[0] = '"';
            var n = Encoding.UTF8.GetChars(value, buffer[1..]);
            buffer[n + 1] = '"';
            return new string(buffer[..(n + 2)]);
        }
        return JsonSerializer.Serialize(Encoding.UTF8.GetString(value), Relaxed);
    }

    /// <summary>Redis's integers: an optional '-', no leading zeros or '+', within a 64-bit integer.</summary>
    public static bool IsCanonicalInteger(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value.Length > 20 || (value[0] == '0' && value.Length > 1) || (value[0] == '-' && (value.Length == 1 || value[1] == '0')))
        {
            return false;
        }
        return Utf8Parser.TryParse(value, out long _, out var consumed) && consumed == value.Length && value[0] != '+';
    }

    /// <summary>The text of a JSON string that holds no escapes (the common case), without a copy.</summary>
    public static bool TryStringContent(string json, out ReadOnlySpan<char> content)
    {
        if (json.Length >= 2 && json[0] == '"' && json[^1] == '"' && json.AsSpan(1, json.Length - 2).IndexOf('\\') < 0)
        {
            content = json.AsSpan(1, json.Length - 2);
            return true;
        }
        content = default;
        return false;
    }

    /// <summary>A JSON string's text (escapes resolved); any other JSON value's own text.</summary>
    public static string DecodeJsonString(string json)
    {
        if (json.Length > 0 && json[0] == '"')
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.GetString() ?? "";
        }
        return json;
    }
}
