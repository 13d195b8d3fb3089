using System.Text.RegularExpressions;

namespace Engram.Core.Security;

/// <summary>
/// Keeps secrets (the embedder's API key, Engram's own keys, tokens) out of text that leaves the process:
/// exception messages, logs, <c>/v1/stats</c>. <see cref="Redact"/> replaces every occurrence of a known
/// secret and anything shaped like a credential (a Bearer/Token/Basic value, an api_key or x-api-key
/// field), since a failing server may echo the request, headers included, back in its error body.
/// </summary>
public static partial class Secrets
{
    public const string Mask = "***";

    /// <summary>Shorter known secrets are masked only by shape: replacing "ab" everywhere would mangle the text.</summary>
    private const int MinExactLength = 6;

    /// <summary><paramref name="text"/> with each of <paramref name="secrets"/> and credential-shaped values masked.</summary>
    public static string Redact(string text, params ReadOnlySpan<string?> secrets)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var secret in secrets)
        {
            if (secret is { Length: >= MinExactLength })
            {
                text = text.Replace(secret, Mask, StringComparison.Ordinal);
            }
        }
        text = SchemeCredential().Replace(text, m => m.Groups["scheme"].Value + " " + Mask);
        return KeyField().Replace(text, m => m.Groups["name"].Value + m.Groups["sep"].Value + Mask);
    }

    /// <summary>A secret for display: its first four characters, to tell keys apart, and the mask.</summary>
    public static string Describe(string? secret) => secret is null ? "(none)" : secret.Length <= 8 ? Mask : secret[..4] + Mask;

    [GeneratedRegex(@"(?<scheme>\b(?:Bearer|Token|Basic))\s+(?!\*\*\*)[A-Za-z0-9\-._~+/=]{6,}", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SchemeCredential();

    [GeneratedRegex(@"(?<name>\b(?:x-api-key|api[_-]?key|authorization|password|secret|token))(?<sep>[""']?\s*[:=]\s*[""']?)(?!\*\*\*|Bearer\b|Token\b|Basic\b)[^\s""',;}\]]+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex KeyField();
}
