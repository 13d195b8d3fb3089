using System.Buffers;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Engram.Core.KeyValue;

namespace Engram.Server.Resp;

/// <summary>
/// RESP values are bytes, key-value entries hold JSON. A value written over RESP is stored as a JSON
/// string of its (UTF-8) text, except a canonical 64-bit integer (<c>42</c>, <c>-7</c>), which is stored as
/// a JSON number so that INCR and REST see a number, and bytes that are not UTF-8 (pickles, msgpack, compressed
/// data; also UTF-8 that is mostly control bytes, six characters each in a JSON string), which are stored as
/// <c>{"$bytes":"&lt;base64&gt;"}</c>: JSON has no byte strings, and a REST client sees an explicit, decodable form.
/// Read back over RESP, a JSON string gives its text, that object (written over RESP or REST) its bytes, and any other
/// JSON value its JSON text, so a value written as JSON over REST reads as that JSON.
/// </summary>
internal static class RespValues
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The JSON form of bytes that are not UTF-8 text: <c>{"$bytes":"</c>, their base64, <c>"}</c>.</summary>
    private const string BytesPrefix = "{\"$bytes\":\"";

    private const string BytesSuffix = "\"}";

    private const string BytesProperty = "$bytes";

    /// <summary>The JSON text for <paramref name="value"/>.</summary>
    [SkipLocalsInit] // the stack buffer is read only where written
    public static string ToJson(ReadOnlySpan<byte> value)
    {
        if (KvWrites.IsCanonicalInteger(value))
        {
            return Encoding.ASCII.GetString(value);
        }
        if (!RespWriter.IsUtf8(value))
        {
            return BytesJson(value);
        }
        if (value.IndexOfAny(Escaped) < 0)
        {
            // Nothing to escape: the text between two quotes.
            var buffer = value.Length <= 1024 ? stackalloc char[value.Length + 2] : new char[value.Length + 2];
            buffer[0] = '"';
            var n = Encoding.UTF8.GetChars(value, buffer[1..]);
            buffer[n + 1] = '"';
            return new string(buffer[..(n + 2)]);
        }
        if (LongerAsJsonThanAsBytes(value))
        {
            return BytesJson(value);
        }
        if (System.Text.Ascii.IsValid(value) && value.IndexOf((byte)0x7F) < 0)
        {
            return EscapeAscii(value);
        }
        return JsonSerializer.Serialize(Encoding.UTF8.GetString(value), Relaxed);
    }

    private static string BytesJson(ReadOnlySpan<byte> value) => BytesPrefix + Convert.ToBase64String(value) + BytesSuffix;

    /// <summary>
    /// Whether valid UTF-8 with control bytes that have no short escape (zero-filled buffers, packed integers: binary
    /// data that happens to be UTF-8) is longer as a JSON string, six characters per such byte, than as base64.
    /// </summary>
    private static bool LongerAsJsonThanAsBytes(ReadOnlySpan<byte> value)
    {
        if (value.IndexOfAnyInRange((byte)0, (byte)0x1F) < 0)
        {
            return false; // quotes and backslashes only: two characters each, never longer than base64
        }
        long extra = 0;
        var longEscapes = false;
        foreach (var b in value)
        {
            if (b < 0x20)
            {
                var shortEscape = b is (byte)'\b' or (byte)'\f' or (byte)'\n' or (byte)'\r' or (byte)'\t';
                longEscapes |= !shortEscape;
                extra += shortEscape ? 1 : 5;
            }
            else if (b is (byte)'"' or (byte)'\\')
            {
                extra++;
            }
        }
        return longEscapes && value.Length + 2 + extra > BytesPrefix.Length + ((value.Length + 2L) / 3 * 4) + BytesSuffix.Length;
    }

    /// <summary>The bytes a JSON string escapes: control characters, quote and backslash.</summary>
    private static readonly SearchValues<byte> Escaped = SearchValues.Create([.. Enumerable.Range(0, 0x20).Select(b => (byte)b), (byte)'"', (byte)'\\']);

    /// <summary>
    /// ASCII text with quotes, backslashes or control characters as a JSON string, escaped exactly as the relaxed
    /// serializer does (short forms, else <c>\u00XX</c>) without its string round trip: redis-benchmark's values hold
    /// backslashes. The runs between escapes are widened by the vectorized ASCII copy, and only the escapes are looked at
    /// one by one (a byte-by-byte switch was 5% of the socket threads' time under a SET load).
    /// </summary>
    private static string EscapeAscii(ReadOnlySpan<byte> value)
    {
        var length = value.Length + 2 + value.Count((byte)'"') + value.Count((byte)'\\');
        if (value.IndexOfAnyInRange((byte)0, (byte)0x1F) >= 0)
        {
            foreach (var b in value)
            {
                length += b switch
                {
                    (byte)'\b' or (byte)'\f' or (byte)'\n' or (byte)'\r' or (byte)'\t' => 1,
                    < 0x20 => 5,
                    _ => 0,
                };
            }
        }
        return string.Create(length, value, static (chars, bytes) =>
        {
            chars[0] = '"';
            var n = 1;
            while (true)
            {
                var run = bytes.IndexOfAny(Escaped);
                var plain = run < 0 ? bytes : bytes[..run];
                Ascii.ToUtf16(plain, chars[n..], out var widened);
                n += widened;
                if (run < 0)
                {
                    break;
                }
                var b = bytes[run];
                bytes = bytes[(run + 1)..];
                chars[n++] = '\\';
                switch (b)
                {
                    case (byte)'"' or (byte)'\\':
                        chars[n++] = (char)b;
                        break;
                    case (byte)'\b':
                        chars[n++] = 'b';
                        break;
                    case (byte)'\f':
                        chars[n++] = 'f';
                        break;
                    case (byte)'\n':
                        chars[n++] = 'n';
                        break;
                    case (byte)'\r':
                        chars[n++] = 'r';
                        break;
                    case (byte)'\t':
                        chars[n++] = 't';
                        break;
                    default:
                        chars[n++] = 'u';
                        chars[n++] = '0';
                        chars[n++] = '0';
                        chars[n++] = HexUpper[b >> 4];
                        chars[n++] = HexUpper[b & 0xF];
                        break;
                }
            }
            chars[n] = '"';
        });
    }

    private const string HexUpper = "0123456789ABCDEF";

    /// <summary>
    /// The text of the JSON string <paramref name="json"/> (quotes included) with its escapes resolved into
    /// <paramref name="destination"/> (at least <c>json.Length</c> chars); false when it is not a well-formed JSON string.
    /// </summary>
    public static bool TryUnescape(ReadOnlySpan<char> json, Span<char> destination, out int written)
    {
        written = 0;
        if (json.Length < 2 || json[0] != '"' || json[^1] != '"')
        {
            return false;
        }
        var inner = json[1..^1];
        var n = 0;
        var i = 0;
        while (i < inner.Length)
        {
            var next = inner[i..].IndexOf('\\');
            if (next < 0)
            {
                inner[i..].CopyTo(destination[n..]);
                n += inner.Length - i;
                break;
            }
            inner.Slice(i, next).CopyTo(destination[n..]);
            n += next;
            i += next;
            if (i + 1 >= inner.Length)
            {
                return false;
            }
            var c = inner[i + 1];
            switch (c)
            {
                case '"' or '\\' or '/':
                    destination[n++] = c;
                    i += 2;
                    break;
                case 'b':
                    destination[n++] = '\b';
                    i += 2;
                    break;
                case 'f':
                    destination[n++] = '\f';
                    i += 2;
                    break;
                case 'n':
                    destination[n++] = '\n';
                    i += 2;
                    break;
                case 'r':
                    destination[n++] = '\r';
                    i += 2;
                    break;
                case 't':
                    destination[n++] = '\t';
                    i += 2;
                    break;
                case 'u' when i + 6 <= inner.Length
                    && ushort.TryParse(inner.Slice(i + 2, 4), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var code)
                    && !char.IsSurrogate((char)code):
                    destination[n++] = (char)code;
                    i += 6;
                    break;
                default:
                    return false; // a malformed escape, or a surrogate (the JSON reader's path checks its pair)
            }
        }
        written = n;
        return true;
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

    /// <summary>
    /// The bytes of a <c>{"$bytes":"&lt;base64&gt;"}</c> value: its compact form (as RESP writes it) without a parse, any
    /// other spelling of an object with that one property (as a REST client may write it) through a parse. Null for
    /// any other JSON, which reads as its text.
    /// </summary>
    public static byte[]? TryBytes(string json)
    {
        if (json.Length == 0 || json[0] != '{')
        {
            return null;
        }
        if (json.StartsWith(BytesPrefix, StringComparison.Ordinal) && json.EndsWith(BytesSuffix, StringComparison.Ordinal))
        {
            var base64 = json.AsSpan(BytesPrefix.Length, json.Length - BytesPrefix.Length - BytesSuffix.Length);
            var padding = base64.EndsWith("==") ? 2 : base64.EndsWith("=") ? 1 : 0;
            var bytes = new byte[Math.Max(0, (base64.Length / 4 * 3) - padding)];
            return Convert.TryFromBase64Chars(base64, bytes, out var written) && written == bytes.Length ? bytes : null;
        }
        if (!json.Contains(BytesProperty, StringComparison.Ordinal))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || root.GetPropertyCount() != 1
                || !root.TryGetProperty(BytesProperty, out var property) || property.ValueKind != JsonValueKind.String)
            {
                return null;
            }
            return property.TryGetBytesFromBase64(out var decoded) ? decoded : null;
        }
        catch (JsonException)
        {
            return null;
        }
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
