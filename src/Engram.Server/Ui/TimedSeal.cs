using System.Globalization;
using Microsoft.AspNetCore.DataProtection;

namespace Engram.Server.Ui;

/// <summary>
/// A cookie value sealed with Data Protection (it cannot be forged or edited) that carries the time it was made, so a copy
/// is worth nothing past <paramref name="lifetime"/>: the UI's login (<see cref="UiSession"/>) and its one-time notices
/// (<see cref="UiFlash"/>). The payload is "{unix seconds}|{text}".
/// </summary>
internal sealed class TimedSeal(IDataProtector protector, TimeProvider clock, TimeSpan lifetime, int maxSealedLength)
{
    public string Seal(string text) =>
        protector.Protect($"{clock.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}|{text}");

    /// <summary>The text sealed in <paramref name="value"/>, or null: empty, too long, not ours, damaged, or older than the lifetime.</summary>
    public string? Open(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > maxSealedLength)
        {
            return null;
        }
        string payload;
        try
        {
            payload = protector.Unprotect(value);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
        var bar = payload.IndexOf('|');
        if (bar <= 0 || !long.TryParse(payload.AsSpan(0, bar), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return null;
        }
        var age = clock.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(Math.Min(seconds, DateTimeOffset.MaxValue.ToUnixTimeSeconds()));
        return age < lifetime ? payload[(bar + 1)..] : null;
    }
}
