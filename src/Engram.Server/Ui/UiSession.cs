using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// The UI's login: the API key typed into the login form, kept in an HttpOnly, SameSite=Strict cookie
/// protected (encrypted and signed) with ASP.NET Core Data Protection, so the cookie never holds the key in
/// the clear and cannot be forged. The authentication gate reads it on <c>/ui</c> paths only, and then
/// treats it exactly like a key sent in a header: role, tenant and scope come from the key.
/// </summary>
internal sealed class UiSession(IDataProtectionProvider protection, TimeProvider clock)
{
    public const string CookieName = "engram_ui";

    /// <summary>
    /// How long a login lasts. The cookie is the whole session (nothing is kept on the server), so logging out can only
    /// delete it from the browser: a copy taken before (a shared machine, a restored browser session) used to act as the
    /// key for as long as the key lived. The login time is sealed in the cookie, and past this a copy is no session.
    /// </summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(12);

    // v2: the payload is "{login time, unix seconds}|{key}" (v1 held the key alone; its cookies no longer unprotect: log in again).
    private readonly TimedSeal _seal = new(protection.CreateProtector("Engram.Ui.Session.v2"), clock, Lifetime, maxSealedLength: 4096);

    public static bool IsUiPath(PathString path) => path.StartsWithSegments("/ui", StringComparison.OrdinalIgnoreCase);

    /// <summary>The key in the request's session cookie, or null (no cookie, one that does not unprotect, or one older than <see cref="Lifetime"/>).</summary>
    public string? KeyFrom(HttpRequest request) =>
        IsUiPath(request.Path) && request.Cookies.TryGetValue(CookieName, out var value) ? _seal.Open(value) : null;

    public void SignIn(HttpContext http, string key) => http.Response.Cookies.Append(CookieName, _seal.Seal(key), Options(http));

    public static void SignOut(HttpContext http) => http.Response.Cookies.Delete(CookieName, Options(http));

    private static CookieOptions Options(HttpContext http) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = http.Request.IsHttps,
        Path = "/ui",
        IsEssential = true,
    };
}
