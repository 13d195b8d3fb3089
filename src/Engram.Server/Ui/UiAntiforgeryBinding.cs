using Engram.Server.Http;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// Binds every antiforgery token to the login it was issued to. The authentication gate sets the caller as a request
/// feature, not <c>HttpContext.User</c>, so antiforgery saw every request as anonymous: a token and cookie pair issued to
/// one login was accepted on a form post of another, once an attacker planted their own cookie in the victim's browser
/// (a sibling host, a plain-HTTP answer). The token carries the key's id (none for the public login form and open mode),
/// checked against the caller of the post.
/// </summary>
internal sealed class UiAntiforgeryBinding : IAntiforgeryAdditionalDataProvider
{
    public string GetAdditionalData(HttpContext context) => Of(context);

    public bool ValidateAdditionalData(HttpContext context, string additionalData) =>
        string.Equals(additionalData ?? "", Of(context), StringComparison.Ordinal);

    /// <summary>"key:{id}" for a request the gate authenticated with a key; empty for a public route or open mode.</summary>
    private static string Of(HttpContext context) =>
        context.Features.Get<ICallerFeature>()?.Caller.KeyId is { } id ? "key:" + id : "";
}
