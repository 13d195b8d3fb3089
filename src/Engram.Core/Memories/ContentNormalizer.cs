using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Engram.Core.Memories;

/// <summary>
/// Normalisation used for duplicate detection: Unicode NFC, trimmed, every run of white space
/// collapsed to one space. The hash is SHA-256 over the UTF-8 of that text, in lowercase hex.
/// </summary>
public static class ContentNormalizer
{
    public static string Normalize(string content)
    {
        var nfc = Common.UnicodeText.Normalize(content, NormalizationForm.FormC);
        var span = nfc.AsSpan().Trim();
        if (!NeedsCollapse(span))
        {
            return span.Length == nfc.Length ? nfc : span.ToString();
        }

        var builder = new StringBuilder(span.Length);
        var inSpace = false;
        foreach (var c in span)
        {
            if (char.IsWhiteSpace(c))
            {
                if (!inSpace)
                {
                    builder.Append(' ');
                    inSpace = true;
                }
            }
            else
            {
                builder.Append(c);
                inSpace = false;
            }
        }
        return builder.ToString();
    }

    public static string Hash(string normalizedContent)
    {
        var maxBytes = Encoding.UTF8.GetMaxByteCount(normalizedContent.Length);
        var rented = ArrayPool<byte>.Shared.Rent(maxBytes);
        try
        {
            var length = Encoding.UTF8.GetBytes(normalizedContent, rented);
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(rented.AsSpan(0, length), digest);
            return Convert.ToHexStringLower(digest);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static bool NeedsCollapse(ReadOnlySpan<char> text)
    {
        var previousSpace = false;
        foreach (var c in text)
        {
            var space = char.IsWhiteSpace(c);
            if (space && (previousSpace || c != ' '))
            {
                return true;
            }
            previousSpace = space;
        }
        return false;
    }
}
