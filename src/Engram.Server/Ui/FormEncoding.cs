using System.Text;
using System.Text.Unicode;

namespace Engram.Server.Ui;

/// <summary>
/// An <c>application/x-www-form-urlencoded</c> body must be UTF-8 once percent-decoded, as a query string must be
/// (<see cref="Http.QueryEncoding"/>): ASP.NET's form reader turns invalid sequences (<c>%FF</c>, or a raw 0xFF byte)
/// into U+FFFD, which would be stored in place of what was sent.
/// </summary>
internal static class FormEncoding
{
    /// <summary>Null when every name and value of <paramref name="body"/> decodes to UTF-8; else the first field that does not ("form" when its name does not).</summary>
    public static string? FindInvalidField(ReadOnlySpan<byte> body)
    {
        var decoded = new byte[body.Length];
        foreach (var range in body.Split((byte)'&'))
        {
            var pair = body[range];
            var equals = pair.IndexOf((byte)'=');
            var name = Decode(equals >= 0 ? pair[..equals] : pair, decoded);
            var nameValid = Utf8.IsValid(name);
            if (!nameValid || (equals >= 0 && !Utf8.IsValid(Decode(pair[(equals + 1)..], decoded[name.Length..]))))
            {
                return nameValid ? Encoding.UTF8.GetString(name) : "form";
            }
        }
        return null;
    }

    /// <summary>'+' as a space, <c>%XX</c> as its byte, anything else as it is (a '%' that starts no escape stays, as the form reader keeps it).</summary>
    private static Span<byte> Decode(ReadOnlySpan<byte> encoded, Span<byte> into)
    {
        var length = 0;
        for (var i = 0; i < encoded.Length; i++)
        {
            var b = encoded[i];
            if (b == '%' && i + 2 < encoded.Length && IsHex(encoded[i + 1]) && IsHex(encoded[i + 2]))
            {
                into[length++] = (byte)(Hex(encoded[i + 1]) << 4 | Hex(encoded[i + 2]));
                i += 2;
            }
            else
            {
                into[length++] = b == '+' ? (byte)' ' : b;
            }
        }
        return into[..length];
    }

    private static bool IsHex(byte b) => char.IsAsciiHexDigit((char)b);

    private static int Hex(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
}
