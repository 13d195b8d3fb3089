using System.Globalization;
using System.Text.Unicode;

namespace Engram.Server.Http;

/// <summary>
/// A query string must be UTF-8 once percent-decoded. ASP.NET turns invalid sequences (<c>%FF</c>)
/// into U+FFFD without a word, so a filter would silently match nothing; refusing them keeps such a
/// request a 400 like every other bad parameter. (A raw non-ASCII byte never gets here: Kestrel
/// refuses it while parsing the request line.)
/// </summary>
internal static class QueryEncoding
{
    /// <summary>Null when every parameter of <paramref name="query"/> decodes to UTF-8; else the first one that does not.</summary>
    public static string? FindInvalidParameter(string? query)
    {
        if (string.IsNullOrEmpty(query) || !query.Contains('%', StringComparison.Ordinal))
        {
            return null; // no escapes: Kestrel let only ASCII through
        }
        foreach (var parameter in query.TrimStart('?').Split('&'))
        {
            if (!IsUtf8(parameter))
            {
                var name = parameter.Split('=')[0];
                return IsUtf8(name) ? Uri.UnescapeDataString(name.Replace('+', ' ')) : "query";
            }
        }
        return null;
    }

    /// <summary>
    /// The first parameter whose name or value holds a percent-encoded NUL (<c>%00</c>), or null. No
    /// parameter takes one, and .NET's number and date parsers ignore trailing NULs, so <c>limit=1%00</c>
    /// had been read as 1 and <c>created_after=2026-01-01T00:00:00Z%00</c> as a date.
    /// </summary>
    public static string? FindNulParameter(string? query)
    {
        if (string.IsNullOrEmpty(query) || !query.Contains("%00", StringComparison.Ordinal))
        {
            return null;
        }
        var parameter = query.TrimStart('?').Split('&').First(p => p.Contains("%00", StringComparison.Ordinal));
        var name = parameter.Split('=')[0];
        return name.Contains("%00", StringComparison.Ordinal) || !IsUtf8(name) ? "query" : Uri.UnescapeDataString(name.Replace('+', ' '));
    }

    private static bool IsUtf8(string escaped)
    {
        var bytes = new byte[escaped.Length];
        var length = 0;
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] == '%' && i + 2 < escaped.Length
                && byte.TryParse(escaped.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
            {
                bytes[length++] = value;
                i += 2;
            }
            else
            {
                bytes[length++] = (byte)escaped[i];
            }
        }
        return Utf8.IsValid(bytes.AsSpan(0, length));
    }
}
