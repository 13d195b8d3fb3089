using Engram.Server.Http;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// What a form post did, carried to the page it redirects to in a protected one-time cookie, so the notice there names
/// only what the server itself did. The listing took its notice from the link (<c>?deleted=</c>), and a link could make
/// the UI say "Deleted" followed by any text. The cookie is sealed with Data Protection (it cannot be forged or edited),
/// holds its time and the login it was made for, lasts a minute and is deleted when read.
/// </summary>
internal sealed class UiFlash(IDataProtectionProvider protection, TimeProvider clock)
{
    public const string CookieName = "engram_flash";

    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);

    private readonly TimedSeal _seal = new(protection.CreateProtector("Engram.Ui.Flash.v1"), clock, Lifetime, maxSealedLength: 2048);

    /// <summary>Notes that the caller deleted the memory <paramref name="id"/>, for the next page of this browser.</summary>
    public void Deleted(HttpContext http, string id) =>
        http.Response.Cookies.Append(CookieName, _seal.Seal($"{Login(http)}|deleted|{id}"), Options(http));

    /// <summary>The id of the memory this login deleted within the last minute, or null; the cookie is gone after this.</summary>
    public string? TakeDeleted(HttpContext http)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var value))
        {
            return null;
        }
        http.Response.Cookies.Delete(CookieName, Options(http));
        var parts = _seal.Open(value)?.Split('|', 3);
        return parts is [var login, "deleted", var id] && login == Login(http) ? id : null;
    }

    private static string Login(HttpContext http) => http.GetCaller().KeyId ?? "";

    private static CookieOptions Options(HttpContext http) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = http.Request.IsHttps,
        Path = "/ui",
        MaxAge = Lifetime,
        IsEssential = true,
    };
}
