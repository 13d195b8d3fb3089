using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// The one rule for browser origins (<c>Engram:Cors:AllowedOrigins</c>: exact origins such as
/// <c>https://app.example.com</c>; none by default), used by CORS here and by the MCP endpoint's required
/// <c>Origin</c> check (MCP over HTTP must refuse foreign origins against DNS rebinding: that endpoint calls
/// <see cref="AcceptsRequest"/> and answers 403 when it is false).
/// <list type="bullet">
/// <item>CORS: only an allowed origin gets <c>Access-Control-*</c> headers and an answered preflight; with
/// no list CORS is off (no such headers, a preflight is an ordinary OPTIONS: 405, or 401 from the gate).</item>
/// <item>A request carrying an <c>Origin</c> header is accepted by <see cref="AcceptsRequest"/> only from an
/// allowed origin, or, with no list, from a loopback origin (a local tool's page); one without the header
/// (curl, SDKs, agents: not a browser) is accepted. REST routes do not refuse by origin: without CORS
/// headers a foreign page cannot read their answers, and a key is needed once keys exist.</item>
/// <item>Preflights: <see cref="IsPreflight"/>. The CORS branch answers an allowed origin's preflight before
/// the authentication gate (a browser never sends a key with one); any other OPTIONS reaches the gate.</item>
/// </list>
/// </summary>
public sealed class OriginPolicy
{
    private readonly HashSet<string> _allowed;

    public OriginPolicy(IEnumerable<string>? allowedOrigins)
    {
        _allowed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var origin in allowedOrigins ?? [])
        {
            _allowed.Add(Canonical(origin) ?? throw new ArgumentException($"'{origin}' is not an origin (scheme://host[:port])", nameof(allowedOrigins)));
        }
    }

    /// <summary>The configured origins in canonical form (scheme and host lower case, no default port, no slash).</summary>
    public IReadOnlyCollection<string> AllowedOrigins => _allowed;

    public bool CorsEnabled => _allowed.Count > 0;

    /// <summary>True when <paramref name="origin"/> (an <c>Origin</c> header value) is one of the configured origins.</summary>
    public bool IsAllowed(string? origin) => _allowed.Count > 0 && Canonical(origin) is { } canonical && _allowed.Contains(canonical);

    /// <summary>The MCP rule: no <c>Origin</c> header, an allowed origin, or (with no list) a loopback origin.</summary>
    public bool AcceptsRequest(HttpContext context)
    {
        var origins = context.Request.Headers.Origin;
        if (origins.Count == 0)
        {
            return true;
        }
        if (origins.Count > 1)
        {
            return false;
        }
        var origin = origins[0];
        return _allowed.Count > 0 ? IsAllowed(origin) : IsLoopback(origin);
    }

    /// <summary>A CORS preflight: OPTIONS with <c>Origin</c> and <c>Access-Control-Request-Method</c>.</summary>
    public static bool IsPreflight(HttpContext context) =>
        HttpMethods.IsOptions(context.Request.Method)
        && context.Request.Headers.Origin.Count > 0
        && context.Request.Headers.AccessControlRequestMethod.Count > 0;

    /// <summary><c>scheme://host[:port]</c> of an http(s) origin, or null when it is not one (a path, <c>null</c>, <c>*</c>).</summary>
    public static string? Canonical(string? origin)
    {
        if (string.IsNullOrWhiteSpace(origin) || origin != origin.Trim()
            || !Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || uri.UserInfo.Length > 0 || uri.Query.Length > 0 || uri.Fragment.Length > 0
            || uri.AbsolutePath != "/" || origin.EndsWith('/'))
        {
            return null;
        }
        return uri.GetLeftPart(UriPartial.Authority);
    }

    private static bool IsLoopback(string? origin) =>
        Canonical(origin) is { } canonical && Uri.TryCreate(canonical, UriKind.Absolute, out var uri) && uri.IsLoopback;
}
