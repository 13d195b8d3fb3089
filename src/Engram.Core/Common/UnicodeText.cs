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

    /// <summary>The bidirectional embedding, override and isolate controls (the marks U+200E, U+200F and U+061C are not among them).</summary>
    private static readonly System.Buffers.SearchValues<char> BidiControls =
        System.Buffers.SearchValues.Create("\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069");

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

    /// <summary>
    /// True for a character that shows as nothing at the edge of a name or identifier: a Unicode format character (category
    /// Cf: zero-width space, joiners, word joiner, the byte order mark U+FEFF, soft hyphen, bidirectional marks and
    /// controls, ...) or a Hangul filler (U+115F, U+1160, U+3164, U+FFA0, letters that render blank). Two exceptions stay
    /// text: the prepended concatenation marks (U+0600-U+0605, U+06DD, U+070F, U+0890, U+0891, U+08E2, U+110BD, U+110CD),
    /// which are visible signs written before digits, and the tag characters U+E0020-U+E007F, which end an emoji flag
    /// such as Scotland's.
    /// </summary>
    public static bool IsEdgeInvisible(Rune rune) => rune.Value switch
    {
        0x115F or 0x1160 or 0x3164 or 0xFFA0 => true,
        (>= 0x0600 and <= 0x0605) or 0x06DD or 0x070F or 0x0890 or 0x0891 or 0x08E2 or 0x110BD or 0x110CD => false,
        >= 0xE0020 and <= 0xE007F => false,
        _ => Rune.GetUnicodeCategory(rune) == System.Globalization.UnicodeCategory.Format,
    };

    /// <summary>
    /// True for a character that has no use inside a name or identifier and makes one that looks like another: zero-width
    /// space (U+200B), word joiner and the invisible operators (U+2060-U+2064), the byte order mark (U+FEFF), soft hyphen
    /// (U+00AD), the deprecated format characters (U+206A-U+206F), the interlinear annotation marks (U+FFF9-U+FFFB) and
    /// the Hangul fillers U+3164 and U+FFA0. The joiners ZWJ (U+200D) and ZWNJ (U+200C) are text between two
    /// characters of scripts that use them (emoji sequences, Persian, Indic scripts) and count here only when a neighbour
    /// is ASCII or missing, where they join nothing ("Al\u200Dice" shows as "Alice"). Bidirectional marks, the Mongolian
    /// vowel separator, variation selectors and the tag characters stay: real text needs them.
    /// </summary>
    private static bool IsInnerInvisible(ReadOnlySpan<char> text, int at) => text[at] switch
    {
        '\u00AD' or '\u200B' or (>= '\u2060' and <= '\u2064') or (>= '\u206A' and <= '\u206F') or '\uFEFF'
            or (>= '\uFFF9' and <= '\uFFFB') or '\u3164' or '\uFFA0' => true,
        '\u200C' or '\u200D' => at == 0 || at == text.Length - 1 || char.IsAscii(text[at - 1]) || char.IsAscii(text[at + 1]),
        _ => false,
    };

    /// <summary>
    /// The index of the first character of <paramref name="text"/> that makes it look like another text: one that
    /// <see cref="IsEdgeInvisible"/> at either end, one that is invisible inside (see <see cref="IsInnerInvisible"/>), or
    /// a bidirectional embedding, override or isolate control anywhere (U+202A-U+202E, U+2066-U+2069: inside an identifier
    /// one reorders what follows, so "ad\u202Enim" shows as "admin"; names keep them, the UI isolates them); -1 when there
    /// is none. What identifiers (scope values, key-value keys, API key names) are refused for.
    /// </summary>
    public static int IndexOfInvisible(ReadOnlySpan<char> text)
    {
        // Every character this looks for is at or above U+00AD (the soft hyphen, the first format character): one
        // vectorized pass clears ASCII text, such as nearly every key a RESP SET names.
        if (text.IndexOfAnyExceptInRange('\u0000', '\u00AC') < 0)
        {
            return -1;
        }
        if (Rune.DecodeFromUtf16(text, out var first, out _) == System.Buffers.OperationStatus.Done && IsEdgeInvisible(first))
        {
            return 0;
        }
        var inner = IndexOfInner(text);
        var bidi = text.IndexOfAny(BidiControls);
        if (inner >= 0 || bidi >= 0)
        {
            return inner < 0 ? bidi : bidi < 0 ? inner : Math.Min(inner, bidi);
        }
        if (Rune.DecodeLastFromUtf16(text, out var last, out var width) == System.Buffers.OperationStatus.Done && IsEdgeInvisible(last))
        {
            return text.Length - width;
        }
        return -1;
    }

    /// <summary>
    /// Throws a <see cref="ValidationException"/> naming <paramref name="field"/> when <paramref name="text"/> holds an
    /// invisible character (<see cref="IndexOfInvisible"/>): an identifier that holds one looks exactly like another and
    /// names something else ("alice" and "al\u200Bice" would be two users, shown alike everywhere).
    /// </summary>
    public static void RequireVisible(string? text, string field)
    {
        if (text is not null && IndexOfInvisible(text) is var at and >= 0)
        {
            throw new ValidationException(field,
                $"{field} holds an invisible character (U+{char.ConvertToUtf32(text, at):X4} at character {CountCharacters(text.AsSpan(0, at))}, counted from 0), " +
                "which would make it look like another value; remove it");
        }
    }

    /// <summary>
    /// A name with what makes it look like another name folded away, as NFC folds a decomposed accent: white space and
    /// <see cref="IsEdgeInvisible"/> characters trimmed at both ends (a byte order mark from a pasted file, a zero-width
    /// space), and the characters invisible inside a name (<see cref="IsInnerInvisible"/>) removed, so "Al\u200Bice"
    /// and "\uFEFFAlice" are "Alice". Joiners between emoji or letters of scripts that use them are kept.
    /// </summary>
    public static string FoldInvisible(string text)
    {
        var span = TrimEdges(text);
        var at = IndexOfInner(span);
        if (at < 0)
        {
            return span.Length == text.Length ? text : span.ToString();
        }
        var builder = new StringBuilder(span.Length);
        var start = 0;
        while (at >= 0)
        {
            builder.Append(span[start..at]);
            start = at + 1;
            var next = IndexOfInner(span, start);
            at = next;
        }
        return builder.Append(span[start..]).ToString();
    }

    /// <summary>
    /// <paramref name="text"/> without white space and <see cref="IsEdgeInvisible"/> characters at either end (a run of
    /// both, such as " \uFEFF Alice", goes as one).
    /// </summary>
    public static ReadOnlySpan<char> TrimEdges(ReadOnlySpan<char> text)
    {
        while (!text.IsEmpty)
        {
            if (char.IsWhiteSpace(text[0]))
            {
                text = text[1..];
            }
            else if (Rune.DecodeFromUtf16(text, out var rune, out var width) == System.Buffers.OperationStatus.Done && IsEdgeInvisible(rune))
            {
                text = text[width..];
            }
            else
            {
                break;
            }
        }
        while (!text.IsEmpty)
        {
            if (char.IsWhiteSpace(text[^1]))
            {
                text = text[..^1];
            }
            else if (Rune.DecodeLastFromUtf16(text, out var rune, out var width) == System.Buffers.OperationStatus.Done && IsEdgeInvisible(rune))
            {
                text = text[..^width];
            }
            else
            {
                break;
            }
        }
        return text;
    }

    /// <summary>The first index at or after <paramref name="from"/> of a character invisible inside a name, or -1.</summary>
    private static int IndexOfInner(ReadOnlySpan<char> text, int from = 0)
    {
        // Every such character is in the BMP at or above U+00AD: one vectorized pass skips ASCII and Latin-1 letters.
        while (from < text.Length)
        {
            var next = text[from..].IndexOfAnyExceptInRange('\u0000', '\u00AC');
            if (next < 0)
            {
                return -1;
            }
            if (IsInnerInvisible(text, from + next))
            {
                return from + next;
            }
            from += next + 1;
        }
        return -1;
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
