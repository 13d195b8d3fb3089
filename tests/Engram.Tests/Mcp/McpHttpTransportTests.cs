using Engram.Core.Security;
using Engram.Server.Http;
using Engram.Tests.Support;
using ModelContextProtocol.Client;

namespace Engram.Tests.Mcp;

/// <summary>
/// <c>/mcp</c> (Streamable HTTP, stateless) with the official C# client and raw requests: both protocol
/// revisions the SDK speaks, the Origin check, the methods a stateless endpoint does not serve, API keys
/// (tenant and key scope confined exactly as over REST) and the rate limits.
/// </summary>
public sealed class McpHttpTransportTests
{
    [Theory]
    [InlineData("2025-11-25")] // initialize handshake
    [InlineData("2026-07-28")] // no handshake: every request carries its protocol version
    public async Task A_client_of_each_protocol_revision_stores_and_reads(string revision)
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server, options: new McpClientOptions { ProtocolVersion = revision });
        client.NegotiatedProtocolVersion.Should().Be(revision);
        (await client.ListToolsAsync()).Select(t => t.Name).Should().Contain(["memory_store", "memory_get"]);
        var stored = (await client.CallAsync("memory_store", $$"""{"content":"revision {{revision}} works","user_id":"u"}""")).Structured();
        var read = (await client.CallAsync("memory_get", $$"""{"id":"{{stored.GetProperty("id").GetString()}}"}""")).Structured();
        read.GetProperty("content").GetString().Should().Be($"revision {revision} works");
    }

    [Fact]
    public async Task A_foreign_origin_is_403_with_a_problem_body_and_a_loopback_origin_is_served()
    {
        await using var server = await EngramServer.StartAsync();
        var foreign = await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList, new Dictionary<string, string> { ["Origin"] = "https://evil.example" });
        foreign.Status.Should().Be(403, foreign.ToString());
        foreign.ContentType.Should().StartWith("application/problem+json");
        foreign.Message.GetProperty("detail").GetString().Should().Contain("Engram:Cors:AllowedOrigins");

        foreach (var origin in new[] { "http://localhost:5173", "http://127.0.0.1:8080" })
        {
            var local = await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList, new Dictionary<string, string> { ["Origin"] = origin });
            local.Status.Should().Be(200, local.ToString());
            local.Message.GetProperty("result").GetProperty("tools").GetArrayLength().Should().BeGreaterThan(0);
        }
        await using var client = await McpConnections.ConnectHttpAsync(server, headers: new Dictionary<string, string> { ["Origin"] = "http://localhost:3000" });
        (await client.CallAsync("memory_store", """{"content":"from a local page"}""")).Structured();
    }

    [Fact]
    public async Task An_allowed_origin_is_served_when_configured_and_others_are_still_refused()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Cors = new CorsSettings { AllowedOrigins = ["https://app.example"] });
        var allowed = await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList, new Dictionary<string, string> { ["Origin"] = "https://app.example" });
        allowed.Status.Should().Be(200, allowed.ToString());
        var other = await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList, new Dictionary<string, string> { ["Origin"] = "https://other.example" });
        other.Status.Should().Be(403, other.ToString());
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("DELETE")]
    public async Task Get_and_delete_are_not_served_by_the_stateless_endpoint_and_never_500(string method)
    {
        await using var server = await EngramServer.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), "/mcp");
        request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
        request.Headers.TryAddWithoutValidation("Mcp-Session-Id", "abc");
        using var response = await server.Client.SendAsync(request);
        ((int)response.StatusCode).Should().Be(405, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task With_keys_no_key_is_401_and_another_tenants_key_sees_only_its_own_tenant()
    {
        await using var server = await EngramServer.StartAsync();
        var acme = await server.CreateKeyAsync("acme", Role.Write);
        var globex = await server.CreateKeyAsync("globex", Role.Write);

        var noKey = await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList);
        noKey.Status.Should().Be(401, noKey.ToString());
        noKey.ContentType.Should().StartWith("application/problem+json");
        var badKey = await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList, new Dictionary<string, string> { ["Authorization"] = "Bearer egm_" + new string('x', 43) });
        badKey.Status.Should().Be(401, badKey.ToString());

        string id;
        await using (var client = await McpConnections.ConnectHttpAsync(server, acme))
        {
            id = (await client.CallAsync("memory_store", """{"content":"acme's launch date is secret"}""")).Structured().GetProperty("id").GetString()!;
            (await client.CallAsync("memory_get", $$"""{"id":"{{id}}"}""")).Structured();
        }
        await using (var client = await McpConnections.ConnectHttpAsync(server, globex))
        {
            var foreign = await client.CallAsync("memory_get", $$"""{"id":"{{id}}"}""");
            foreign.IsError.Should().BeTrue();
            foreign.Text().Should().StartWith("not found").And.NotContain("secret");
        }
    }

    [Fact]
    public async Task A_key_scoped_to_a_user_is_confined_over_mcp_as_over_rest()
    {
        await using var server = await EngramServer.StartAsync();
        var writer = await server.CreateKeyAsync("acme", Role.Write);
        var alice = await server.CreateKeyAsync("acme", Role.Write, new KeyScope("alice", null));

        string bobs;
        await using (var client = await McpConnections.ConnectHttpAsync(server, writer))
        {
            bobs = (await client.CallAsync("memory_store", """{"content":"bob's salary","user_id":"bob"}""")).Structured().GetProperty("id").GetString()!;
        }
        await using (var client = await McpConnections.ConnectHttpAsync(server, alice))
        {
            var stamped = (await client.CallAsync("memory_store", """{"content":"alice likes tea"}""")).Structured();
            stamped.GetProperty("user_id").GetString().Should().Be("alice", "the key's scope is stamped on what it stores");
            var planted = await client.CallAsync("memory_store", """{"content":"planted","user_id":"bob"}""");
            planted.IsError.Should().BeTrue();
            planted.Text().Should().StartWith("forbidden");
            var hidden = await client.CallAsync("memory_get", $$"""{"id":"{{bobs}}"}""");
            hidden.IsError.Should().BeTrue();
            hidden.Text().Should().StartWith("not found").And.NotContain("salary");
        }
        // The same key over REST: the same answers.
        using var rest = server.ClientWithKey(alice);
        ((int)(await rest.GetAsync($"/v1/memories/{bobs}")).StatusCode).Should().Be(404);
    }

    [Fact]
    public async Task The_rate_limit_applies_to_mcp_as_to_rest()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
            o.RateLimit = new RateLimitOptions { PermitsPerSecond = 0.01, Burst = 2, MaxConcurrentRequests = 0 });
        var answers = new List<McpHttpAnswer>();
        for (var i = 0; i < 3; i++)
        {
            answers.Add(await McpHttpRaw.PostAsync(server.Client, McpHttpRaw.ToolsList));
        }
        answers.Take(2).Should().OnlyContain(a => a.Status == 200);
        answers[2].Status.Should().Be(429, answers[2].ToString());
        answers[2].ContentType.Should().StartWith("application/problem+json");
    }
}
