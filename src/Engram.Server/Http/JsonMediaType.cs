using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Engram.Server.Http;

/// <summary>
/// The Content-Type a JSON body may carry: <c>application/json</c> or <c>application/*+json</c>, with
/// no charset or UTF-8 (JSON is UTF-8, RFC 8259). A missing Content-Type is taken as JSON. Anything else,
/// <c>text/not-json</c> included, is a 415.
/// </summary>
internal static class JsonMediaType
{
    public static void Require(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return;
        }
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || !IsJson(media))
        {
            throw new BadHttpRequestException($"the body must be JSON (Content-Type: application/json), not {contentType}", StatusCodes.Status415UnsupportedMediaType);
        }
        if (media.Charset is { Length: > 0 } charset && !IsUtf8(charset.Value))
        {
            throw new BadHttpRequestException($"the body must be UTF-8 JSON; charset {charset} is not supported", StatusCodes.Status415UnsupportedMediaType);
        }
    }

    private static bool IsJson(MediaTypeHeaderValue media) =>
        media.Type.Equals("application", StringComparison.OrdinalIgnoreCase)
        && (media.SubType.Equals("json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase));

    private static bool IsUtf8(string? charset) =>
        charset?.Trim('"') is { } name && (name.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || name.Equals("utf8", StringComparison.OrdinalIgnoreCase));
}
