using Engram.Core.Common;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using KestrelServerOptions = Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions;
using MinDataRate = Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate;

namespace Engram.Server.Http;

/// <summary>
/// Limits on the request target and headers that the app enforces itself, so a refusal gets a problem
/// body (414, 431), and a path or query that is not UTF-8 once percent-decoded (400, <see cref="QueryEncoding"/>).
/// Kestrel answers its own limits before any middleware runs; its limits are therefore set above
/// Engram's (a request between the two reaches this middleware). What Kestrel still refuses itself
/// (beyond its limits, or a request it cannot parse) gets its problem body from
/// <see cref="BareRejectionBodies"/>: see docs/ARCHITECTURE.md.
/// </summary>
internal sealed class RequestLimits(RequestDelegate next)
{
    /// <summary>The longest request target (path and query) Engram reads: Kestrel's own default line limit.</summary>
    public const int MaxTargetBytes = 8 * 1024;

    /// <summary>The most header bytes (names and values) Engram reads: Kestrel's own default.</summary>
    public const int MaxHeaderBytes = 32 * 1024;

    /// <summary>The most header fields Engram reads: Kestrel's own default.</summary>
    public const int MaxHeaderCount = 100;

    /// <summary>Kestrel's hard limits (requests above these never reach Engram), and the connection middleware that gives its refusals a body.</summary>
    public static void ConfigureKestrel(KestrelServerOptions kestrel)
    {
        kestrel.Limits.MaxRequestLineSize = 8 * MaxTargetBytes;
        kestrel.Limits.MaxRequestHeadersTotalSize = 2 * MaxHeaderBytes;
        kestrel.Limits.MaxRequestHeaderCount = 2 * MaxHeaderCount;
        // Slow clients (slowloris): the whole head must arrive within 10 s (Kestrel's default is 30 s; a real
        // client sends it in one packet), an idle kept-alive connection closes after 60 s (default 130 s), and a
        // body or a response slower than 240 bytes/s after a 5 s grace ends the request (Kestrel's defaults,
        // stated here so that they stay: a body that stalls is a 408 problem body, see ProblemMiddleware).
        kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
        kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(60);
        kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 240, gracePeriod: TimeSpan.FromSeconds(5));
        kestrel.Limits.MinResponseDataRate = new MinDataRate(bytesPerSecond: 240, gracePeriod: TimeSpan.FromSeconds(5));
        kestrel.ConfigureEndpointDefaults(listen => listen.Use(BareRejectionBodies.Wrap));
    }

    public Task InvokeAsync(HttpContext context)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        if (target.Length > MaxTargetBytes)
        {
            throw new BadHttpRequestException(
                $"the request target is {target.Length} bytes; the limit is {MaxTargetBytes} (send long filters in a body, e.g. POST /v1/search)",
                StatusCodes.Status414UriTooLong);
        }
        if (RawPaths.RawPath(context) is { } rawPath && RawPaths.Undecodable(rawPath))
        {
            // Kestrel keeps an escape that is not UTF-8 as text, so /v1/entities/user/%ff named the user literally called
            // "%ff" (sent as %25ff) and deleted that user's memories.
            throw new ValidationException("path", "the request path is not UTF-8 once percent-decoded, or has a '%' that starts no escape; " +
                "encode text as UTF-8 before percent-encoding it (%25 for a literal '%')");
        }
        if (QueryEncoding.FindInvalidParameter(context.Request.QueryString.Value) is { } parameter)
        {
            throw new ValidationException(parameter, $"'{parameter}' is not UTF-8 once percent-decoded; encode text as UTF-8 before percent-encoding it");
        }
        if (QueryEncoding.FindNulParameter(context.Request.QueryString.Value) is { } withNul)
        {
            throw new ValidationException(withNul, $"'{withNul}' holds a NUL character (%00), which no query parameter takes");
        }
        var headers = context.Request.Headers;
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true && UnsupportedCoding(headers.ContentEncoding) is { } coding)
        {
            // A compressed body would otherwise be read as it is: "malformed JSON" for gzip, or a body stored as sent
            // while the client believed it compressed. RFC 9110: 415, and Accept-Encoding says what is taken.
            context.Response.Headers.AcceptEncoding = "identity";
            return Problems.For(415, $"Content-Encoding '{coding}' is not supported; send the body uncompressed").ExecuteAsync(context);
        }
        if (headers.Count > MaxHeaderCount)
        {
            throw new BadHttpRequestException($"the request has {headers.Count} header fields; the limit is {MaxHeaderCount}",
                StatusCodes.Status431RequestHeaderFieldsTooLarge);
        }
        var bytes = 0L;
        foreach (var (name, values) in headers)
        {
            bytes += name.Length;
            foreach (var value in values)
            {
                bytes += value?.Length ?? 0;
            }
        }
        return bytes > MaxHeaderBytes
            ? throw new BadHttpRequestException($"the request headers are {bytes} bytes; the limit is {MaxHeaderBytes}",
                StatusCodes.Status431RequestHeaderFieldsTooLarge)
            : next(context);
    }

    /// <summary>The first content coding other than <c>identity</c> the request names, if any.</summary>
    private static string? UnsupportedCoding(Microsoft.Extensions.Primitives.StringValues values)
    {
        foreach (var value in values)
        {
            foreach (var coding in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!coding.Equals("identity", StringComparison.OrdinalIgnoreCase))
                {
                    return coding.Length > 40 ? coding[..40] + "…" : coding;
                }
            }
        }
        return null;
    }
}
