using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// The UI's login: the API key typed into the login form, kept in an HttpOnly, SameSite=Strict cookie
/// protected (encrypted and signed) with ASP.NET Core Data Protection, so the cookie never holds the key in
/// the clear and cannot be forged. The authentication gate reads it on <c>/ui</c> paths only, and then
/// treats it exactly like a key sent in a header: role, tenant and scope come from the key.
/// </summary>
internal sealed class UiSession(IDataProtectionProvider protection)
{
    public const string CookieName = "engram_ui";

    private readonly IDataProtector _protector = protection.CreateProtector("Engram.Ui.Session.v1");

    public static bool IsUiPath(PathString path) => path.StartsWithSegments("/ui", StringComparison.OrdinalIgnoreCase);

    /// <summary>The key in the request's session cookie, or null (no cookie, or one that does not unprotect).</summary>
    public string? KeyFrom(HttpRequest request)
    {
        if (!IsUiPath(request.Path) || !request.Cookies.TryGetValue(CookieName, out var value) || string.IsNullOrEmpty(value) || value.Length > 4096)
        {
            return null;
        }
        try
        {
            return _protector.Unprotect(value);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
    }

    public void SignIn(HttpContext http, string key) =>
        http.Response.Cookies.Append(CookieName, _protector.Protect(key), Options(http));

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
