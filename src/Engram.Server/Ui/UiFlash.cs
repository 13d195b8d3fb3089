using System.Globalization;
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

    private readonly IDataProtector _protector = protection.CreateProtector("Engram.Ui.Flash.v1");

    /// <summary>Notes that the caller deleted the memory <paramref name="id"/>, for the next page of this browser.</summary>
    public void Deleted(HttpContext http, string id) =>
        http.Response.Cookies.Append(CookieName,
            _protector.Protect($"{clock.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}|{Login(http)}|deleted|{id}"),
            Options(http));

    /// <summary>The id of the memory this login deleted within the last minute, or null; the cookie is gone after this.</summary>
    public string? TakeDeleted(HttpContext http)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var value))
        {
            return null;
        }
        http.Response.Cookies.Delete(CookieName, Options(http));
        string payload;
        try
        {
            payload = value is { Length: > 0 and <= 2048 } ? _protector.Unprotect(value) : "";
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
        var parts = payload.Split('|', 4);
        return parts.Length == 4 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            && clock.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(Math.Min(seconds, DateTimeOffset.MaxValue.ToUnixTimeSeconds())) < Lifetime
            && parts[1] == Login(http) && parts[2] == "deleted"
            ? parts[3]
            : null;
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
