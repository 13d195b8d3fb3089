using System.Text;
using Engram.Core.Common;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Engram.Server.Http;

/// <summary>
/// Paths that end in a name a client chose (a key-value key, a graph entity's name) are read from the raw request
/// target. Kestrel decodes the path before routing (all but <c>%2F</c>) and removes <c>.</c> and <c>..</c> segments, so
/// the key <c>a/..</c> was routed to <c>/v1/</c> and an entity named <c>a/b</c>, sent as <c>a%2Fb</c>, reached its
/// handler as the text <c>a%2Fb</c>. Under <see cref="NamePrefixes"/> the target as sent is the truth.
/// </summary>
internal static class RawPaths
{
    /// <summary>Where names start; case-insensitive, as routing is.</summary>
    public static readonly string[] NamePrefixes = ["/v1/kv/", "/v1/graph/entities/"];

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The request target's path as the client sent it (no query), or null for an absolute-form target.</summary>
    public static string? RawPath(HttpContext http)
    {
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (raw is null || !raw.StartsWith('/'))
        {
            return null;
        }
        var query = raw.IndexOf('?');
        return query >= 0 ? raw[..query] : raw;
    }

    /// <summary>
    /// The segment of the raw path after <paramref name="prefix"/> (up to the next '/'), strictly decoded; the routed
    /// <paramref name="routed"/> value when the raw target does not start with the prefix (an absolute-form target).
    /// </summary>
    public static string Segment(HttpContext http, string prefix, string routed, string field)
    {
        if (RawPath(http) is not { } raw || !raw.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            return routed;
        }
        var rest = raw[prefix.Length..];
        var end = rest.IndexOf('/');
        return Decode(end >= 0 ? rest[..end] : rest, field);
    }

    /// <summary>
    /// Percent-decodes strictly: every '%' starts two hex digits (<c>%25</c> is a literal '%') and the bytes decode as
    /// UTF-8. Lenient decoding kept <c>%zz</c> or <c>%ff</c> as text, so <c>%ff</c> and <c>%25ff</c> named the same key.
    /// </summary>
    public static string Decode(string encoded, string field)
    {
        if (!encoded.Contains('%'))
        {
            return encoded;
        }
        var bytes = new List<byte>(encoded.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '%')
            {
                if (i + 2 >= encoded.Length || !char.IsAsciiHexDigit(encoded[i + 1]) || !char.IsAsciiHexDigit(encoded[i + 2]))
                {
                    throw new ValidationException(field, $"a '%' in the {field} must start a percent-encoded byte such as %2F (%25 for a literal '%')");
                }
                bytes.Add(Convert.ToByte(encoded.Substring(i + 1, 2), 16));
                i += 2;
            }
            else if (Rune.TryGetRuneAt(encoded, i, out var rune))
            {
                bytes.AddRange(utf8[..rune.EncodeToUtf8(utf8)]);
                i += rune.Utf16SequenceLength - 1;
            }
            else
            {
                throw new ValidationException(field, $"the {field} is not valid Unicode");
            }
        }
        try
        {
            return StrictUtf8.GetString(bytes.ToArray());
        }
        catch (DecoderFallbackException)
        {
            throw new ValidationException(field, $"the {field}'s percent-encoded bytes are not UTF-8");
        }
    }

    /// <summary>
    /// Whether <paramref name="rawPath"/> has a '%' that starts no escape or escapes that are not UTF-8. Paths under
    /// <see cref="NamePrefixes"/> are left to <see cref="Segment"/>, whose refusal names the key or entity.
    /// </summary>
    internal static bool Undecodable(string rawPath)
    {
        if (!rawPath.Contains('%') || Array.Exists(NamePrefixes, p => rawPath.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }
        try
        {
            Decode(rawPath, "path");
            return false;
        }
        catch (ValidationException)
        {
            return true;
        }
    }

    /// <summary>Whether a raw path under a name prefix has a <c>.</c> or <c>..</c> segment (also percent-encoded) that Kestrel removed.</summary>
    internal static bool NeedsRawRouting(string rawPath)
    {
        if (!Array.Exists(NamePrefixes, p => rawPath.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }
        foreach (var segment in rawPath.Split('/'))
        {
            if (segment.Length is > 0 and <= 6 && Uri.UnescapeDataString(segment) is "." or "..")
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The raw path decoded as Kestrel decodes (every escape but <c>%2F</c>), keeping its dot segments.</summary>
    internal static string ForRouting(string rawPath) =>
        string.Join('/', rawPath.Split('/').Select(segment => Uri.UnescapeDataString(segment).Replace("/", "%2F", StringComparison.Ordinal)));
}

/// <summary>
/// Routes a request whose raw path under <see cref="RawPaths.NamePrefixes"/> has a dot segment by that raw path, so the
/// key <c>..</c> written over RESP or in an mset reaches <c>/v1/kv/{key}</c> instead of the route Kestrel's normalised
/// path names. Runs before routing; nothing else changes.
/// </summary>
internal sealed class RawPathRouting(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext http)
    {
        if (RawPaths.RawPath(http) is { } raw && RawPaths.NeedsRawRouting(raw))
        {
            http.Request.Path = new PathString(RawPaths.ForRouting(raw));
        }
        return next(http);
    }
}
