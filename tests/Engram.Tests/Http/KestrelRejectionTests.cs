using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Http;

/// <summary>
/// Requests refused below the app. Engram enforces its own limits on the target (8 KB) and headers
/// (32 KB, 100 fields) with problem bodies, and raises Kestrel's beyond them; what Kestrel still
/// refuses itself (it answers before any middleware runs) gets its problem body from
/// <c>BareRejectionBodies</c>, which rewrites Kestrel's bare answer on the connection.
/// </summary>
public sealed class KestrelRejectionTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task ATargetAboveEngramsLimit_Is414WithAProblemBody()
    {
        var response = await _server.Client.GetAsync("/v1/memories?user_id=" + new string('a', 9_000));
        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.RequestUriTooLong);
        problem.GetProperty("title").GetString().Should().Be("URI too long");
    }

    [Fact]
    public async Task HeadersAboveEngramsLimit_Are431WithAProblemBody()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        request.Headers.Add("X-Big", new string('a', 40_000));
        await (await _server.Client.SendAsync(request)).ShouldBeProblemAsync(HttpStatusCode.RequestHeaderFieldsTooLarge);

        var many = new HttpRequestMessage(HttpMethod.Get, "/health");
        for (var i = 0; i < 120; i++)
        {
            many.Headers.Add($"X-H{i}", "1");
        }
        await (await _server.Client.SendAsync(many)).ShouldBeProblemAsync(HttpStatusCode.RequestHeaderFieldsTooLarge);
    }

    [Fact]
    public async Task ValidUtf8PercentEncodedInTheQuery_ReachesEngram()
    {
        var response = await RawAsync("GET /v1/memories?user_id=Zo%C3%AB HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray());
        response.Should().StartWith("HTTP/1.1 200");
    }

    [Theory]
    [InlineData("/v1/memories?user_id=%FF", "user_id")]
    [InlineData("/v1/memories?limit=5&agent_id=Zo%C3", "agent_id")]
    [InlineData("/health?%FE=1", "query")]
    public async Task PercentEncodedBytesThatAreNotUtf8_AreA400ProblemNamingTheParameter(string url, string field)
    {
        var response = await RawAsync(Bytes($"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        response.Should().StartWith("HTTP/1.1 400").And.Contain("application/problem+json").And.Contain($"\"field\":\"{field}\"");
    }

    public static TheoryData<string, byte[], string> RefusedByKestrel() => new()
    {
        { "raw non-ASCII byte in the query", Bytes("GET /v1/memories?user_id=\xff HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), "400" },
        { "raw UTF-8 in the query", Concat("GET /v1/memories?user_id="u8.ToArray(), [0xC3, 0xAB], " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray()), "400" },
        { "raw UTF-8 in the path", Concat("GET /v1/kv/Zo"u8.ToArray(), [0xC3, 0xAB], " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray()), "400" },
        { "malformed request line", Bytes("GET  /health HTTP/1.1 extra\r\nHost: localhost\r\nConnection: close\r\n\r\n"), "400" },
        { "no Host header", Bytes("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"), "400" },
        { "invalid Host header", Bytes("GET /health HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n"), "400" },
        { "target beyond Kestrel's 64 KB", Bytes("GET /health?x=" + new string('a', 70_000) + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), "414" },
        { "headers beyond Kestrel's 64 KB", Bytes("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + new string('a', 70_000) + "\r\nConnection: close\r\n\r\n"), "431" },
    };

    [Theory]
    [MemberData(nameof(RefusedByKestrel))]
    public async Task WhatKestrelRefusesItself_GetsAProblemBody(string what, byte[] request, string status)
    {
        var response = await RawAsync(request);
        response.Should().StartWith($"HTTP/1.1 {status}", what);
        var split = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var head = response[..split];
        var body = Encoding.UTF8.GetBytes(response[(split + 4)..]);
        head.Should().Contain("\r\nContent-Type: application/problem+json", what)
            .And.Contain($"\r\nContent-Length: {body.Length}\r\n", what)
            .And.Contain("\r\nConnection: close", what);
        using var problem = JsonDocument.Parse(body);
        problem.RootElement.GetProperty("status").GetInt32().Should().Be(int.Parse(status, CultureInfo.InvariantCulture), what);
        problem.RootElement.GetProperty("title").GetString().Should().NotBeNullOrEmpty(what);
        problem.RootElement.GetProperty("detail").GetString().Should().NotBeNullOrEmpty(what);
    }

    [Fact]
    public async Task ARefusalAfterAnsweredRequestsOnOneConnection_StillGetsAProblemBody()
    {
        var request = Concat(
            "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(),
            "GET /v1/memories HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(),
            "GET /v1/memories?user_id="u8.ToArray(), [0xFF], " HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray());
        var response = await RawAsync(request);
        response.Split("HTTP/1.1 200 OK").Length.Should().Be(3, "the two good requests were answered as usual");
        var refusal = response[response.LastIndexOf("HTTP/1.1 ", StringComparison.Ordinal)..];
        refusal.Should().StartWith("HTTP/1.1 400").And.Contain("application/problem+json").And.Contain("\"status\":400");
    }

    private async Task<string> RawAsync(byte[] request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_server.BaseAddress.Host, _server.BaseAddress.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(request);
        using var reader = new MemoryStream();
        try
        {
            await stream.CopyToAsync(reader).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (IOException)
        {
            // Kestrel may reset the connection after its answer when unread request bytes remain.
        }
        return Encoding.Latin1.GetString(reader.ToArray());
    }

    private static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];
}
