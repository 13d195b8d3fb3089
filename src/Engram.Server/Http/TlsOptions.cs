using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace Engram.Server.Http;

/// <summary>
/// HTTPS (configuration section <c>Engram:Tls</c>): a certificate Kestrel serves on every <c>https://</c>
/// address given with <c>--urls</c>. PKCS#12 (<c>.pfx</c>/<c>.p12</c>) or PEM (certificate, with the key in the
/// same file or in <see cref="KeyPath"/>). The password comes from the environment (ENGRAM_TLS_PASSWORD or
/// Engram__Tls__Password), never a flag, so it stays out of process listings and shell history.
/// </summary>
public sealed class TlsOptions
{
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key, when it is not in the certificate file.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Of the PKCS#12 file or the encrypted PEM key.</summary>
    public string? Password { get; set; }

    /// <summary><c>Strict-Transport-Security</c> max-age on HTTPS responses; 0 = no header. Default one year.</summary>
    public int HstsMaxAgeSeconds { get; set; } = 31_536_000;

    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);

    public IEnumerable<string> Validate()
    {
        if (HstsMaxAgeSeconds < 0)
        {
            yield return "Engram:Tls:HstsMaxAgeSeconds must be 0 (no header) or more";
        }
        if (!Enabled && !string.IsNullOrWhiteSpace(KeyPath))
        {
            yield return "Engram:Tls:KeyPath is set but Engram:Tls:CertificatePath is not";
        }
    }

    /// <summary>
    /// An <c>https://</c> address needs a configured certificate: Kestrel would otherwise look for the ASP.NET
    /// development certificate, which a server should not serve and whose absence it reports in three lines.
    /// </summary>
    public static IEnumerable<string> CheckUrls(string urls, TlsOptions tls)
    {
        if (!tls.Enabled && urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Any(url => url.StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            yield return "an https:// address needs a certificate: set Engram:Tls:CertificatePath (Engram__Tls__CertificatePath), see docs/CONFIGURATION.md";
        }
    }

    /// <summary>The password is never shown.</summary>
    public override string ToString() =>
        $"CertificatePath={CertificatePath}, KeyPath={KeyPath}, Password={(Password is null ? "(none)" : Core.Security.Secrets.Mask)}, HstsMaxAgeSeconds={HstsMaxAgeSeconds.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Loads the certificate with its private key. A missing file, a wrong password or a certificate without a
    /// key is an <see cref="OptionsValidationException"/> with one line naming the setting (never the password),
    /// which <c>engram serve</c> prints before exiting 1.
    /// </summary>
    public X509Certificate2 LoadCertificate()
    {
        var path = Path.GetFullPath(CertificatePath!);
        string Fail(string reason) => $"Engram:Tls:CertificatePath: cannot use {path}: {reason}";
        var missing = !File.Exists(path) ? "the file does not exist"
            : KeyPath is not null && !File.Exists(KeyPath) ? $"its key file {Path.GetFullPath(KeyPath)} (Engram:Tls:KeyPath) does not exist"
            : null;
        if (missing is not null)
        {
            throw new OptionsValidationException(EngramServerOptions.Section, typeof(TlsOptions), [Fail(missing)]);
        }
        X509Certificate2 certificate;
        try
        {
            var extension = Path.GetExtension(path).ToLowerInvariant();
            certificate = extension is ".pfx" or ".p12"
                ? X509CertificateLoader.LoadPkcs12FromFile(path, Password, X509KeyStorageFlags.EphemeralKeySet)
                : string.IsNullOrEmpty(Password)
                    ? X509Certificate2.CreateFromPemFile(path, KeyPath)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, Password, KeyPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            var reason = ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => "the file does not exist",
                UnauthorizedAccessException => "it cannot be read (permissions)",
                CryptographicException when Password is null => "it is not a certificate Engram can read, or it needs a password (set ENGRAM_TLS_PASSWORD)",
                CryptographicException => "it is not a certificate Engram can read, or the password (ENGRAM_TLS_PASSWORD) is wrong",
                _ => ex.Message.Split('\n')[0].Trim(),
            };
            throw new OptionsValidationException(EngramServerOptions.Section, typeof(TlsOptions), [Fail(reason)]);
        }
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new OptionsValidationException(EngramServerOptions.Section, typeof(TlsOptions),
                [Fail("it holds no private key (give the key in the same file or in Engram:Tls:KeyPath)")]);
        }
        return certificate;
    }
}
