using System.Net;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>
/// An open server (no keys, loopback only) must not be usable by a web page: not by a cross-site request
/// to 127.0.0.1 (the Origin header) and not by DNS rebinding (a foreign name in the Host header).
/// </summary>
public sealed class OpenModeBrowserTests
{
    [Fact]
    public async Task Open_mode_answers_only_requests_addressed_to_a_loopback_name()
    {
        await using var server = await EngramServer.StartAsync();
        var port = server.BaseAddress.Port;
        foreach (var host in new[] { $"localhost:{port}", $"127.0.0.1:{port}", $"[::1]:{port}", $"app.localhost:{port}" })
        {
            (await SendAsync(server.Client, host, origin: null)).StatusCode.Should().Be(HttpStatusCode.OK, host);
        }
        foreach (var host in new[] { $"rebind.attacker.example:{port}", "attacker.example", $"10.0.0.7:{port}", $"localhost.attacker.example:{port}" })
        {
            var response = await SendAsync(server.Client, host, origin: null);
            await response.ShouldBeProblemAsync(HttpStatusCode.Forbidden);
            (await response.Content.ReadAsStringAsync()).Should().Contain("Host");
        }
        // The probes stay answerable (an orchestrator may probe by any name).
        using var probe = new HttpRequestMessage(HttpMethod.Get, "/health/ready");
        probe.Headers.Host = "engram.internal";
        (await server.Client.SendAsync(probe)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Open_mode_refuses_pages_of_foreign_origins_and_accepts_loopback_and_allowed_ones()
    {
        await using var server = await EngramServer.StartAsync();
        var host = $"127.0.0.1:{server.BaseAddress.Port}";
        (await SendAsync(server.Client, host, "http://localhost:5173")).StatusCode.Should().Be(HttpStatusCode.OK);
        foreach (var origin in new[] { "https://attacker.example", "null", "http://127.0.0.1.attacker.example" })
        {
            await (await SendAsync(server.Client, host, origin)).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        }
        // A cross-site POST without a body (no Content-Type, no preflight) must not increment anything.
        using var post = new HttpRequestMessage(HttpMethod.Post, "/v1/kv/visits/incr");
        post.Headers.TryAddWithoutValidation("Origin", "https://attacker.example");
        await (await server.Client.SendAsync(post)).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        (await server.Client.GetAsync("/v1/kv/visits")).StatusCode.Should().Be(HttpStatusCode.NotFound);

        await using var allowing = await EngramServer.StartAsync(configure: o => o.Cors.AllowedOrigins = ["https://app.example.com"]);
        var allowingHost = $"127.0.0.1:{allowing.BaseAddress.Port}";
        (await SendAsync(allowing.Client, allowingHost, "https://app.example.com")).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await SendAsync(allowing.Client, allowingHost, "http://localhost:5173")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task With_keys_the_key_decides_not_the_host_or_origin()
    {
        await using var server = await EngramServer.StartAsync();
        var client = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Read));
        (await SendAsync(client, "engram.example.com", "https://attacker.example")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, string host, string? origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
        request.Headers.Host = host;
        if (origin is not null)
        {
            request.Headers.TryAddWithoutValidation("Origin", origin);
        }
        return client.SendAsync(request);
    }
}
