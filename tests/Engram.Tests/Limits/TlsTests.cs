using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Engram.Server;
using Engram.Tests.Cli;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Limits;

/// <summary>HTTPS with a configured certificate (Engram:Tls), HSTS on HTTPS answers, and a clear refusal of a bad certificate.</summary>
public sealed class TlsTests
{
    private const string Password = "pfx-password-5d1e";

    [Theory]
    [InlineData("pfx")]
    [InlineData("pem")]
    public async Task Https_ServesTheConfiguredCertificate_WithHstsOnHttpsOnly(string format)
    {
        using var folder = new TempDirectory();
        using var certificate = SelfSigned();
        var (app, https, http) = await StartHttpsAndHttpAsync(folder.Path, certificate, format);
        await using var _ = app;
        try
        {
            using var client = TrustingOnly(certificate);

            var health = await client.GetAsync(https + "/health");
            health.StatusCode.Should().Be(HttpStatusCode.OK);
            health.Headers.GetValues("Strict-Transport-Security").Should().Equal("max-age=31536000");
            // Problem bodies carry it too (the problem middleware clears headers; HSTS is added as the response starts).
            var missing = await client.GetAsync(https + "/v1/memories/01J00000000000000000000000");
            await missing.ShouldBeProblemAsync(HttpStatusCode.NotFound);
            missing.Headers.Contains("Strict-Transport-Security").Should().BeTrue();

            var plain = await client.GetAsync(http + "/health");
            plain.StatusCode.Should().Be(HttpStatusCode.OK);
            plain.Headers.Contains("Strict-Transport-Security").Should().BeFalse("HSTS over plain HTTP is ignored by browsers and forbidden by RFC 6797");
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task Over_https_both_ui_cookies_are_secure_and_over_http_neither_is()
    {
        using var folder = new TempDirectory();
        using var certificate = SelfSigned();
        var (app, https, http) = await StartHttpsAndHttpAsync(folder.Path, certificate, "pem");
        await using var _ = app;
        try
        {
            var key = (await app.Services.GetRequiredService<Core.Security.ApiKeyService>()
                .CreateAsync(new Core.Security.NewApiKey("acme", Core.Security.Role.Read, null, "tls-ui", null), "test")).Secret;
            using var client = TrustingOnly(certificate, cookiesByHand: true);
            client.DefaultRequestHeaders.Accept.ParseAdd("text/html");
            foreach (var (origin, secure) in new[] { (https, true), (http, false) })
            {
                var form = await client.GetAsync(origin + "/ui/login");
                var tokenCookie = form.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("engram_af=", StringComparison.Ordinal));
                var token = System.Text.RegularExpressions.Regex.Match(await form.Content.ReadAsStringAsync(), "name=\"_af\" value=\"([^\"]+)\"").Groups[1].Value;
                using var post = new HttpRequestMessage(HttpMethod.Post, origin + "/ui/login")
                {
                    Content = new FormUrlEncodedContent([new("_af", WebUtility.HtmlDecode(token)), new("key", key)]),
                };
                post.Headers.Add("Cookie", tokenCookie.Split(';')[0]);
                var login = await client.SendAsync(post);
                login.StatusCode.Should().Be(HttpStatusCode.Redirect, origin);
                var sessionCookie = login.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("engram_ui=", StringComparison.Ordinal));
                foreach (var cookie in new[] { tokenCookie, sessionCookie })
                {
                    cookie.Contains("; secure", StringComparison.OrdinalIgnoreCase).Should().Be(secure, cookie);
                }
            }
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task Serve_WithAMissingCertificateOrAWrongPassword_RefusesToStartWithOneLine()
    {
        using var folder = new TempDirectory();
        using var certificate = SelfSigned();
        var (pfx, _, _) = Write(certificate, folder.Path, "pfx");
        var url = $"https://127.0.0.1:{EngramServer.FreePort()}";

        var missing = await CliProcess.RunAsync(["serve", "--data", Path.Combine(folder.Path, "data"), "--urls", url],
            environment: new Dictionary<string, string> { ["Engram__Tls__CertificatePath"] = Path.Combine(folder.Path, "nope.pfx") });
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Trim().Split('\n').Should().ContainSingle(missing.ToString());
        missing.Stderr.Should().Contain("Engram:Tls:CertificatePath").And.Contain("does not exist").And.NotContain(" at ");

        var wrong = await CliProcess.RunAsync(["serve", "--data", Path.Combine(folder.Path, "data"), "--urls", url],
            environment: new Dictionary<string, string>
            {
                ["Engram__Tls__CertificatePath"] = pfx,
                ["ENGRAM_TLS_PASSWORD"] = "not-the-password-93b",
            });
        wrong.ExitCode.Should().Be(1, wrong.ToString());
        wrong.Stderr.Trim().Split('\n').Should().ContainSingle(wrong.ToString());
        wrong.Stderr.Should().Contain("password").And.NotContain("not-the-password-93b").And.NotContain(Password).And.NotContain(" at ");
    }

    [Fact]
    public async Task Serve_OnAnHttpsAddressWithoutACertificate_SaysWhichSettingIsMissing()
    {
        using var folder = new TempDirectory();
        var result = await CliProcess.RunAsync(["serve", "--data", Path.Combine(folder.Path, "data"), "--urls", $"https://127.0.0.1:{EngramServer.FreePort()}"]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Trim().Split('\n').Should().ContainSingle(result.ToString());
        result.Stderr.Should().Contain("Engram:Tls:CertificatePath");
    }

    /// <summary>A self-signed server certificate for 127.0.0.1 and localhost, valid for a day.</summary>
    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static (string Certificate, string? Key, string? Password) Write(X509Certificate2 certificate, string folder, string format)
    {
        if (format == "pfx")
        {
            var pfx = Path.Combine(folder, "server.pfx");
            File.WriteAllBytes(pfx, certificate.Export(X509ContentType.Pkcs12, Password));
            return (pfx, null, Password);
        }
        var pem = Path.Combine(folder, "server.crt");
        var key = Path.Combine(folder, "server.key");
        File.WriteAllText(pem, certificate.ExportCertificatePem());
        File.WriteAllText(key, certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return (pem, key, null);
    }

    /// <summary>A client that accepts exactly this certificate (and plain HTTP).</summary>
    /// <summary>A server with the certificate written as <paramref name="format"/>, on an HTTPS and a plain HTTP address.</summary>
    private static async Task<(WebApplication App, string Https, string Http)> StartHttpsAndHttpAsync(string folder, X509Certificate2 certificate, string format)
    {
        var (certificatePath, keyPath, password) = Write(certificate, folder, format);
        var https = $"https://127.0.0.1:{EngramServer.FreePort()}";
        var http = $"http://127.0.0.1:{EngramServer.FreePort()}";
        var app = ServerApplication.Build([], o =>
        {
            o.DataPath = Path.Combine(folder, "data");
            o.Tls.CertificatePath = certificatePath;
            o.Tls.KeyPath = keyPath;
            o.Tls.Password = password;
            o.Memory.BudgetMB = EngramServer.TestProcessBudgetMB;
            o.Health.MinFreeDiskMB = 1; // /health must answer 200 whatever the CI disk holds
        }, urls: $"{https};{http}");
        await app.StartAsync();
        return (app, https, http);
    }

    /// <summary>
    /// A client that trusts only <paramref name="certificate"/>; with <paramref name="cookiesByHand"/> it neither keeps
    /// cookies nor follows redirects, so a test reads each Set-Cookie and sends the ones it chooses.
    /// </summary>
    private static HttpClient TrustingOnly(X509Certificate2 certificate, bool cookiesByHand = false) =>
        new(new SocketsHttpHandler
        {
            UseCookies = !cookiesByHand,
            AllowAutoRedirect = !cookiesByHand,
            SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == certificate.GetCertHashString() },
        });
}
