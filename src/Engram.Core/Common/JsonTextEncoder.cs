using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Unicode;

namespace Engram.Core.Common;

/// <summary>
/// Engram's one escaping policy for JSON text: escape only what JSON requires (<c>"</c>, <c>\</c> and
/// control characters) and write everything else as raw UTF-8, including characters outside the
/// Basic Multilingual Plane (emoji) and the HTML-sensitive ASCII characters (<c>&lt; &gt; &amp; ' + `</c>):
/// Engram's JSON is served as application/json, never inlined into HTML. The framework's encoders
/// cannot express this: even <see cref="JavaScriptEncoder.UnsafeRelaxedJsonEscaping"/> escapes every
/// character outside the BMP as a surrogate pair (🎉 became <c>\uD83C\uDF89</c> while é stayed raw).
/// Text that is not valid Unicode (a lone surrogate, invalid UTF-8) is written as U+FFFD, never as it is.
/// </summary>
public sealed class JsonTextEncoder : JavaScriptEncoder
{
    public static JsonTextEncoder Instance { get; } = new();

    private static readonly SearchValues<char> MustEscapeChars = SearchValues.Create(Escaped() + SurrogateRange());
    private static readonly SearchValues<byte> MustEscapeBytes = SearchValues.Create(Encoding.ASCII.GetBytes(Escaped()));

    private JsonTextEncoder()
    {
    }

    /// <summary>\u0000-\u001F as \uXXXX (or its short form), plus the sign and letters of a surrogate pair; 12 for safety.</summary>
    public override int MaxOutputCharactersPerInputCharacter => 12;

    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar is < 0x20 or '"' or '\\' || (unicodeScalar is >= 0xD800 and <= 0xDFFF) || unicodeScalar > 0x10FFFF;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        var span = new ReadOnlySpan<char>(text, textLength);
        var offset = 0;
        while (true)
        {
            var found = span[offset..].IndexOfAny(MustEscapeChars);
            if (found < 0)
            {
                return -1;
            }
            var at = offset + found;
            // A well-formed surrogate pair is one scalar written raw; anything else is escaped.
            if (char.IsHighSurrogate(span[at]) && at + 1 < span.Length && char.IsLowSurrogate(span[at + 1]))
            {
                offset = at + 2;
                continue;
            }
            return at;
        }
    }

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        var found = utf8Text.IndexOfAny(MustEscapeBytes);
        var valid = found < 0 ? utf8Text : utf8Text[..found];
        // Invalid UTF-8 is rare (the writer's own transcoding never produces it): let the base class find it.
        return Utf8.IsValid(valid) ? found : base.FindFirstCharacterToEncodeUtf8(utf8Text);
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        var escape = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\b' => "\\b",
            '\f' => "\\f",
            _ => null,
        };
        var destination = new Span<char>(buffer, bufferLength);
        if (escape is not null)
        {
            numberOfCharactersWritten = escape.Length;
            return escape.TryCopyTo(destination);
        }
        if (!WillEncode(unicodeScalar))
        {
            // Asked to write a scalar that needs no escaping: write it as it is.
            return new Rune(unicodeScalar).TryEncodeToUtf16(destination, out numberOfCharactersWritten);
        }
        var scalar = unicodeScalar is >= 0xD800 and <= 0xDFFF or > 0x10FFFF ? 0xFFFD : unicodeScalar;
        return destination.TryWrite(CultureInfo.InvariantCulture, $"\\u{scalar:X4}", out numberOfCharactersWritten);
    }

    private static string Escaped()
    {
        var chars = new char[0x20 + 2];
        for (var i = 0; i < 0x20; i++)
        {
            chars[i] = (char)i;
        }
        chars[0x20] = '"';
        chars[0x21] = '\\';
        return new string(chars);
    }

    private static string SurrogateRange()
    {
        var chars = new char[0xE000 - 0xD800];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)(0xD800 + i);
        }
        return new string(chars);
    }
}
