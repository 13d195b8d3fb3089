using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Engram.Core.Common;

/// <summary>
/// The write paths' Unicode rule: text must be valid Unicode, so a lone surrogate (<c>"\ud800"</c> in
/// JSON, or a half pair from an in-process caller) is refused where it comes in. Stored text is read back
/// and serialized on every read; a lone surrogate there makes the JSON writer throw, so letting one in
/// would break every later read of the row.
/// </summary>
public static class UnicodeText
{
    /// <summary>True when <paramref name="text"/> holds no unpaired surrogate.</summary>
    public static bool IsValid(ReadOnlySpan<char> text)
    {
        var i = text.IndexOfAnyInRange('\uD800', '\uDFFF');
        while (i >= 0)
        {
            if (!char.IsHighSurrogate(text[i]) || i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
            {
                return false;
            }
            i += 2;
            var next = text[i..].IndexOfAnyInRange('\uD800', '\uDFFF');
            i = next < 0 ? -1 : i + next;
        }
        return true;
    }

    /// <summary>
    /// The characters of <paramref name="text"/> as limits count them: Unicode scalar values (code points), so an emoji
    /// or a rare CJK ideograph counts once, as Python's <c>len()</c> counts it, not as the two UTF-16 units .NET holds
    /// it in. A lone surrogate counts as one (the write paths refuse it anyway).
    /// </summary>
    public static int CountCharacters(ReadOnlySpan<char> text)
    {
        var count = text.Length;
        var i = text.IndexOfAnyInRange('\uD800', '\uDBFF');
        while (i >= 0)
        {
            if (i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                count--;
                i++;
            }
            var next = text[(i + 1)..].IndexOfAnyInRange('\uD800', '\uDBFF');
            i = next < 0 ? -1 : i + 1 + next;
        }
        return count;
    }

    /// <summary>
    /// The first <paramref name="characters"/> characters of <paramref name="text"/> for a message, never cutting a surrogate
    /// pair in two (half a pair makes the message invalid Unicode, which a client's JSON parser may refuse).
    /// </summary>
    public static string Excerpt(string text, int characters)
    {
        var end = Math.Min(characters, text.Length);
        if (end > 0 && end < text.Length && char.IsHighSurrogate(text[end - 1]) && char.IsLowSurrogate(text[end]))
        {
            end--;
        }
        return text[..end];
    }

    /// <summary>
    /// Throws a <see cref="ValidationException"/> naming <paramref name="field"/> unless <paramref name="text"/> is valid
    /// Unicode without a NUL character (U+0000): PostgreSQL's text cannot hold one, so neither store takes it, and a write
    /// answers alike on both.
    /// </summary>
    public static void Require(string? text, string field)
    {
        if (text is null)
        {
            return;
        }
        if (!IsValid(text))
        {
            throw Invalid(field);
        }
        if (text.Contains('\0'))
        {
            throw HoldsNul(field);
        }
    }

    internal static ValidationException HoldsNul(string field) =>
        new(field, $"{field} holds a NUL character (U+0000), which Engram does not store (PostgreSQL's text cannot hold one)");

    /// <summary>
    /// True when every string and object key of the JSON text, at any depth, is valid Unicode: valid
    /// UTF-8, and every <c>\uD800</c>-<c>\uDFFF</c> escape part of a high-low pair. Reads the escapes
    /// in place, so a long value costs no copy (unescaping would rent one from the shared pool).
    /// </summary>
    public static bool IsValidJson(ReadOnlySpan<byte> utf8Json) => IsValidJson(utf8Json, out _);

    /// <summary>
    /// <see cref="IsValidJson(ReadOnlySpan{byte})"/>, and how deeply the value nests: 0 for a scalar, 1 for an object or
    /// array of scalars, one more for each level inside.
    /// </summary>
    public static bool IsValidJson(ReadOnlySpan<byte> utf8Json, out int depth)
    {
        depth = 0;
        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { MaxDepth = 1024 });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    depth = Math.Max(depth, reader.CurrentDepth + 1);
                }
                else if (reader.TokenType is (JsonTokenType.String or JsonTokenType.PropertyName)
                    && (!Utf8.IsValid(reader.ValueSpan) || (reader.ValueIsEscaped && !EscapesArePaired(reader.ValueSpan))))
                {
                    return false;
                }
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// <paramref name="text"/> in the Unicode normalization <paramref name="form"/>. .NET's normalization (ICU) throws for
    /// U+FFFE, a noncharacter but valid Unicode that JSON and UTF-8 carry, and for a lone surrogate; those are kept as they
    /// are and the text between them is normalized. Both are starters that compose with nothing, so this is what
    /// normalizing the whole would give.
    /// </summary>
    public static string Normalize(string text, NormalizationForm form)
    {
        var at = IndexOfUnnormalizable(text);
        if (at < 0)
        {
            return text.IsNormalized(form) ? text : text.Normalize(form);
        }
        var builder = new StringBuilder(text.Length);
        var start = 0;
        while (at >= 0)
        {
            AppendNormalized(builder, text[start..at], form);
            builder.Append(text[at]);
            start = at + 1;
            var next = IndexOfUnnormalizable(text.AsSpan(start));
            at = next < 0 ? -1 : start + next;
        }
        AppendNormalized(builder, text[start..], form);
        return builder.ToString();
    }

    private static void AppendNormalized(StringBuilder builder, string piece, NormalizationForm form) =>
        builder.Append(piece.IsNormalized(form) ? piece : piece.Normalize(form));

    /// <summary>The first U+FFFE or unpaired surrogate, or -1.</summary>
    private static int IndexOfUnnormalizable(ReadOnlySpan<char> text)
    {
        var i = text.IndexOfAnyInRange('\uD800', '\uDFFF');
        var nonCharacter = text.IndexOf('\uFFFE');
        while (i >= 0 && (nonCharacter < 0 || i < nonCharacter))
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var next = text[(i + 2)..].IndexOfAnyInRange('\uD800', '\uDFFF');
                i = next < 0 ? -1 : i + 2 + next;
                continue;
            }
            return i;
        }
        return nonCharacter;
    }

    /// <summary>One JSON string's raw bytes (as the reader holds them) are valid Unicode.</summary>
    internal static bool IsValidJsonString(ReadOnlySpan<byte> raw, bool escaped) => Utf8.IsValid(raw) && (!escaped || EscapesArePaired(raw));

    /// <summary>Walks the escapes of one JSON string's raw bytes (the reader has checked their syntax).</summary>
    private static bool EscapesArePaired(ReadOnlySpan<byte> raw)
    {
        var pendingHigh = false;
        var i = raw.IndexOf((byte)'\\');
        while (i >= 0 && i + 1 < raw.Length)
        {
            var next = i + 2;
            if (raw[i + 1] == (byte)'u' && i + 6 <= raw.Length)
            {
                var unit = Hex(raw.Slice(i + 2, 4));
                next = i + 6;
                if (pendingHigh)
                {
                    if (unit is < 0xDC00 or > 0xDFFF)
                    {
                        return false;
                    }
                    pendingHigh = false;
                }
                else if (unit is >= 0xD800 and <= 0xDBFF)
                {
                    pendingHigh = true;
                    // The low half must follow at once.
                    if (next + 1 >= raw.Length || raw[next] != (byte)'\\' || raw[next + 1] != (byte)'u')
                    {
                        return false;
                    }
                }
                else if (unit is >= 0xDC00 and <= 0xDFFF)
                {
                    return false;
                }
            }
            else if (pendingHigh)
            {
                return false;
            }
            var rest = raw[next..].IndexOf((byte)'\\');
            i = rest < 0 ? -1 : next + rest;
        }
        return !pendingHigh;
    }

    private static int Hex(ReadOnlySpan<byte> four)
    {
        var value = 0;
        foreach (var b in four)
        {
            value = (value << 4) | (b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10);
        }
        return value;
    }

    /// <summary>The JSON value's own bytes, as parsed (no copy, no re-encoding).</summary>
    public static ReadOnlySpan<byte> RawUtf8(JsonElement element) => JsonMarshal.GetRawUtf8Value(element);

    /// <summary>Throws a <see cref="ValidationException"/> naming <paramref name="field"/> unless every string and key of <paramref name="json"/> is valid Unicode.</summary>
    public static void RequireJson(JsonElement json, string field)
    {
        if (json.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
            && !IsValidJson(RawUtf8(json)))
        {
            throw Invalid(field);
        }
    }

    private static ValidationException Invalid(string field) =>
        new(field, $"{field} is not valid Unicode: it holds a lone surrogate (such as \\ud800 without its pair) or invalid UTF-8");
}
