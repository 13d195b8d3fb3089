using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>Log in with an API key (kept only in the protected session cookie) and log out.</summary>
internal static class UiLogin
{
    public static async Task<IResult> PageAsync(HttpContext http, ApiKeyService keys, AuthMode mode, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        QueryParser.RefuseAllExcept(query, "return");
        await keys.RefreshIfDueAsync(ct);
        return Form(http, keys, mode, QueryParser.Single(query, "return"), null, 200);
    }

    private static IResult Form(HttpContext http, ApiKeyService keys, AuthMode mode, string? returnTo, string? error, int status) =>
        UiPage.Render<LoginPage>(http, new LoginPage.Data(!keys.HasActiveKeys && mode.OpenAllowed, SafeReturn(returnTo), error), status);

    public static async Task<IResult> LoginAsync(HttpContext http, ApiKeyService keys, AuthMode mode, UiSession session, FailedAuthThrottle throttle, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var form = await UiPage.ReadFormAsync(http, ct);
        var presented = UiPage.Field(form, "key");
        var returnTo = SafeReturn(UiPage.Field(form, "return"));
        var key = presented is null || presented.Length > 512 ? null : await keys.AuthenticateAsync(presented, ct);
        if (key is null)
        {
            if (!throttle.TryCount(http.Connection.RemoteIpAddress, out var retryAfter))
            {
                // As the gate answers the API's 429: say when to try again.
                http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                return Form(http, keys, mode, returnTo, "Too many bad keys from this address; wait a minute before trying again.", 429);
            }
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Form(http, keys, mode, returnTo, "That key is not valid (unknown, revoked or expired).", 401);
        }
        session.SignIn(http, presented!);
        return UiPage.SeeOther(returnTo);
    }

    public static async Task<IResult> LogoutAsync(HttpContext http, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        UiSession.SignOut(http);
        return UiPage.SeeOther("/ui/login");
    }

    /// <summary>
    /// Only a path of the UI itself (never another site, never a scheme-relative //host), in ASCII: it becomes the Location
    /// header, which Kestrel refuses to write with any other character, so "/ui/é" made the login (key accepted) a 500.
    /// A path from the gate's redirect is percent-encoded already; a hand-typed one falls back to the overview.
    /// </summary>
    internal static string SafeReturn(string? path) =>
        path is { Length: > 0 and < 2048 } && path.StartsWith("/ui", StringComparison.Ordinal) && !path.StartsWith("//", StringComparison.Ordinal)
            && !path.Contains('\\') && path.All(c => char.IsAscii(c) && !char.IsControl(c))
            ? path
            : "/ui";
}
