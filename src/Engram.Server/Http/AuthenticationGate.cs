using Engram.Core.Common;
using Engram.Core.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Engram.Server.Http;

/// <summary>
/// The authentication gate, after routing: finds the endpoint's <see cref="AccessRule"/>, reads the key
/// (<c>Authorization: Bearer</c>, <c>Authorization: Token</c> as mem0's clients send it, or
/// <c>X-API-Key</c>), checks the role and sets the request's <see cref="ICallerFeature"/>. Once any
/// key that is not revoked exists, every route needs a key except the public probes (and <c>/metrics</c>
/// when Engram:Auth:OpenMetrics is on). A route without a rule is admin-only. 401 and 403 are problem
/// bodies whose text is the same for a missing, unknown, revoked or expired key, so it never tells
/// whether a key exists; both are audited (rate-limited per address, without anything of the key).
/// </summary>
internal sealed class AuthenticationGate(RequestDelegate next, ApiKeyService keys, AuditTrail audit, AuthMode mode, IOptions<EngramServerOptions> options,
    OriginPolicy origins, FailedAuthThrottle throttle, TimeProvider clock, Ui.UiSession uiSession)
{
    public const string TenantHeader = "X-Engram-Tenant";
    public const string ApiKeyHeader = "X-API-Key";

    /// <summary>The one detail of every 401: the same whether the key is missing, unknown, revoked or expired.</summary>
    public const string UnauthorizedDetail = "a valid API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'";

    /// <summary>What ASP.NET Core's routing names the endpoint it picks when a path exists but not for the method.</summary>
    private const string MethodNotAllowedEndpoint = "405 HTTP Method Not Supported";

    public async Task InvokeAsync(HttpContext context)
    {
        var endpoint = context.GetEndpoint();
        var rule = endpoint?.Metadata.GetMetadata<AccessRule>();
        if (rule is { IsPublic: true } || (options.Value.Auth.OpenMetrics && context.Request.Path.Equals("/metrics", StringComparison.OrdinalIgnoreCase)))
        {
            await next(context);
            return;
        }
        await keys.RefreshIfDueAsync(context.RequestAborted);
        if (!keys.HasActiveKeys && mode.OpenAllowed)
        {
            await OpenAsync(context);
            return;
        }

        if (HasConflictingKeys(context.Request))
        {
            await DenyAsync(context, 401, null, $"the request carries more than one API key (Authorization and {ApiKeyHeader}, or a header given twice) and they differ; send one key",
                "conflicting keys");
            return;
        }
        // The UI's pages take the key from its login cookie (protected; read on /ui paths only) when no header carries one.
        var presented = PresentedKey(context.Request) ?? uiSession.KeyFrom(context.Request);
        var key = presented is null ? null : await keys.AuthenticateAsync(presented, context.RequestAborted);
        if (key is null)
        {
            if (presented is not null && !throttle.TryCount(context.Connection.RemoteIpAddress, out var retryAfter))
            {
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                await DenyAsync(context, 429, null, "too many bad API keys from this address; wait before trying again", "bad keys past the per-address budget");
                return;
            }
            await DenyAsync(context, 401, null, UnauthorizedDetail, presented is null ? "no key" : "unknown, revoked or expired key");
            return;
        }
        // No endpoint: routing answers 404 (or the path exists for other methods: 405); any valid key may hear that.
        var needed = rule?.MinimumRole ?? (endpoint is null || endpoint.DisplayName == MethodNotAllowedEndpoint ? Role.Read : Role.Admin);
        if (key.Role < needed)
        {
            await DenyAsync(context, 403, key, $"this key's role ({key.Role.Name()}) may not {context.Request.Method} {context.Request.Path}; it needs {needed.Name()}",
                $"role {key.Role.Name()} below {needed.Name()}");
            return;
        }
        var tenant = key.Tenant;
        if (context.Request.Headers.TryGetValue(TenantHeader, out var named))
        {
            if (key.Role != Role.Admin)
            {
                await DenyAsync(context, 403, key, $"only an admin key may act for another tenant ({TenantHeader})", $"{TenantHeader} from a {key.Role.Name()} key");
                return;
            }
            if (key.Scope is not null)
            {
                // A scope confines a key within its tenant (README): its role says what it may do there, never where.
                await DenyAsync(context, 403, key, $"a scoped key acts only within its own tenant and scope ({TenantHeader})", $"{TenantHeader} from a scoped key");
                return;
            }
            tenant = ValidTenant(named);
        }
        context.Features.Set<ICallerFeature>(new CallerFeature(new Caller(tenant, key.Actor, key.Role, key.Scope, key.Id)));
        if (tenant != key.Tenant && !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            // An admin changing another tenant's data is recorded in that tenant's audit log (reads are not: too many, and they change nothing).
            context.Audit(AuditActions.ActForTenant, $"{context.Request.Method} {context.Request.Path}", $"a key of tenant {key.Tenant}");
        }
        await next(context);
    }

    /// <summary>
    /// No keys and loopback only: the open-mode caller, which may still name a tenant. Loopback alone does
    /// not keep a browser out: a page on any site can send requests to 127.0.0.1 (a cross-site POST), or
    /// reach it under its own name by DNS rebinding. So an open server answers only requests addressed to
    /// a loopback name (the Host header) that come from no browser page or from an allowed or loopback
    /// origin; with keys neither matters (a browser cannot attach a key it does not have).
    /// </summary>
    private Task OpenAsync(HttpContext context)
    {
        if (!IsLoopbackHost(context.Request.Host.Host))
        {
            return Problems.For(403, "with no API keys Engram answers only requests addressed to localhost, 127.0.0.1 or [::1] " +
                "(the Host header); create a key (engram keys create) to serve other names").ExecuteAsync(context);
        }
        if (!origins.AcceptsRequest(context))
        {
            return Problems.For(403, "with no API keys Engram refuses requests from browser pages of other origins (the Origin header); " +
                "allow the origin with Engram:Cors:AllowedOrigins or create a key").ExecuteAsync(context);
        }
        var caller = CallerResolver.OpenCaller(context.Request);
        if (context.Request.Headers.TryGetValue(TenantHeader, out var named))
        {
            caller = caller with { Tenant = ValidTenant(named) };
        }
        context.Features.Set<ICallerFeature>(new CallerFeature(caller));
        return next(context);
    }

    /// <summary>A loopback name in a Host header; unlike a listen address, <c>*.localhost</c> counts (browsers resolve it to loopback).</summary>
    private static bool IsLoopbackHost(string host) =>
        ListenAddresses.IsLoopbackHost(host) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);

    private static string ValidTenant(StringValues named) =>
        named.Count == 1 ? TenantNames.Require(named[0], TenantHeader) : throw new ValidationException(TenantHeader, $"give {TenantHeader} once");

    /// <summary>The key from the first of the headers that is present; a malformed header counts as a bad key, not as none.</summary>
    internal static string? PresentedKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            return KeyInAuthorization(authorization[0]);
        }
        var apiKey = request.Headers[ApiKeyHeader];
        return apiKey.Count > 0 ? (apiKey[0] ?? "").Trim() : null;
    }

    /// <summary>The key an <c>Authorization</c> value carries (<c>Bearer</c> or <c>Token</c>); "" for another scheme, a bad key.</summary>
    private static string KeyInAuthorization(string? value)
    {
        value ??= "";
        var space = value.IndexOf(' ');
        var scheme = space < 0 ? value : value[..space];
        return space >= 0 && (scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase) || scheme.Equals("Token", StringComparison.OrdinalIgnoreCase))
            ? value[(space + 1)..].Trim()
            : "";
    }

    /// <summary>
    /// Whether the key headers name different keys. The first header present used to win, so a request carrying an admin
    /// key and a read key acted as whichever came first in this method's order, not as its sender may have meant.
    /// </summary>
    internal static bool HasConflictingKeys(HttpRequest request)
    {
        var authorization = request.Headers.Authorization;
        var apiKey = request.Headers[ApiKeyHeader];
        if (authorization.Count + apiKey.Count < 2)
        {
            return false;
        }
        string? first = null;
        foreach (var value in authorization)
        {
            var key = KeyInAuthorization(value);
            if ((first ??= key) != key)
            {
                return true;
            }
        }
        foreach (var value in apiKey)
        {
            var key = (value ?? "").Trim();
            if ((first ??= key) != key)
            {
                return true;
            }
        }
        return false;
    }

    private async Task DenyAsync(HttpContext context, int status, ApiKey? key, string detail, string reason)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "";
        audit.Denied(new AuditEntry(clock.GetUtcNow(), key?.Tenant ?? Caller.DefaultTenant, key?.Actor ?? "anonymous", AuditActions.AuthDenied,
            $"{request.Method} {(path.Length > 200 ? path[..200] + "…" : path)}", status == 403 ? AuditActions.Forbidden : AuditActions.Unauthorized,
            context.Connection.RemoteIpAddress?.ToString(), reason));
        if (Ui.UiSession.IsUiPath(request.Path) && Ui.UiPage.WantsHtml(context))
        {
            // A browser on a UI page: a login form instead of a 401, a page instead of a 403 problem body.
            if (status == 401 && (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)))
            {
                Ui.UiSession.SignOut(context);
                context.Response.Redirect("/ui/login?return=" + Uri.EscapeDataString(Ui.UiLogin.SafeReturn(path + request.QueryString.Value)));
                return;
            }
            await Ui.UiPage.Error(context, status, status == 401 ? "Log in again: your session has ended." : detail, navigation: false).ExecuteAsync(context);
            return;
        }
        if (status == 401)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
        }
        await Problems.For(status, detail).ExecuteAsync(context);
    }
}
