using System.Net;
using Engram.Server.Http;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Engram.Tests.Limits;

/// <summary>CORS is off by default; an allow-list (Engram:Cors:AllowedOrigins) turns it on for those origins only.</summary>
public sealed class CorsTests
{
    private const string App = "https://app.example.com";
    private const string Evil = "https://evil.example.net";

    [Fact]
    public async Task Off_ByDefault_NoAccessControlHeaders_AndAPreflightIsAnOrdinaryOptionsRequest()
    {
        await using var server = await EngramServer.StartAsync();

        var preflight = await server.Client.SendAsync(Preflight("/v1/memories", App));
        ((int)preflight.StatusCode).Should().BeGreaterThanOrEqualTo(400, "nothing answers a preflight when CORS is off");
        AccessControlHeaders(preflight).Should().BeEmpty();

        // An open server refuses other origins' pages outright (OpenModeBrowserTests); with a key the request
        // is served, but without CORS headers a page could not read the answer.
        var refused = await server.Client.SendAsync(WithOrigin(HttpMethod.Get, "/health", App));
        refused.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        AccessControlHeaders(refused).Should().BeEmpty();
        var keyed = server.ClientWithKey(await server.CreateKeyAsync("acme", Engram.Core.Security.Role.Read));
        var read = await keyed.SendAsync(WithOrigin(HttpMethod.Get, "/health", App));
        read.StatusCode.Should().Be(HttpStatusCode.OK);
        AccessControlHeaders(read).Should().BeEmpty();
    }

    [Fact]
    public async Task On_ForTheListedOriginsOnly()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Cors.AllowedOrigins = [App, "http://localhost:5173"]);

        var preflight = await server.Client.SendAsync(Preflight("/v1/memories/01J00000000000000000000000", App, "PATCH", "authorization,x-api-key,content-type,if-match,x-engram-tenant,x-engram-actor"));
        preflight.StatusCode.Should().Be(HttpStatusCode.NoContent);
        preflight.Headers.GetValues("Access-Control-Allow-Origin").Should().Equal(App);
        string.Join(",", preflight.Headers.GetValues("Access-Control-Allow-Methods")).Should().Contain("PATCH");
        var allowed = string.Join(",", preflight.Headers.GetValues("Access-Control-Allow-Headers")).ToLowerInvariant();
        allowed.Should().Contain("x-api-key").And.Contain("if-match").And.Contain("x-engram-tenant").And.Contain("authorization");

        var read = await server.Client.SendAsync(WithOrigin(HttpMethod.Get, "/health", App));
        read.StatusCode.Should().Be(HttpStatusCode.OK);
        read.Headers.GetValues("Access-Control-Allow-Origin").Should().Equal(App);
        string.Join(",", read.Headers.GetValues("Access-Control-Expose-Headers")).Should().Contain("ETag").And.Contain("X-Engram-Seq").And.Contain("Retry-After");

        // An error answer is readable by the allowed page too (the problem middleware clears headers; CORS adds them as the response starts).
        var missing = await server.Client.SendAsync(WithOrigin(HttpMethod.Get, "/v1/memories/01J00000000000000000000000", App));
        await missing.ShouldBeProblemAsync(HttpStatusCode.NotFound);
        missing.Headers.GetValues("Access-Control-Allow-Origin").Should().Equal(App);

        // Another origin gets nothing: its preflight is not answered as CORS, its reads carry no headers.
        var foreignPreflight = await server.Client.SendAsync(Preflight("/v1/memories", Evil));
        ((int)foreignPreflight.StatusCode).Should().BeGreaterThanOrEqualTo(400);
        AccessControlHeaders(foreignPreflight).Should().BeEmpty();
        var foreignRead = await server.Client.SendAsync(WithOrigin(HttpMethod.Get, "/health", Evil));
        AccessControlHeaders(foreignRead).Should().BeEmpty();
        // Not a prefix or a case trick either.
        AccessControlHeaders(await server.Client.SendAsync(WithOrigin(HttpMethod.Get, "/health", App + ".evil.example.net"))).Should().BeEmpty();
    }

    [Fact]
    public async Task AWildcardOrAPath_IsRefusedAtStart()
    {
        var act = () => EngramServer.StartAsync(configure: o => o.Cors.AllowedOrigins = ["*", App + "/path"]);
        var refused = await act.Should().ThrowAsync<OptionsValidationException>();
        refused.Which.Failures.Should().HaveCount(2).And.AllSatisfy(f => f.Should().Contain("Engram:Cors:AllowedOrigins"));
    }

    [Fact]
    public void OriginPolicy_TheRuleTheMcpEndpointUses()
    {
        var none = new OriginPolicy([]);
        none.AcceptsRequest(Request(null)).Should().BeTrue("a client without Origin is not a browser");
        none.AcceptsRequest(Request("http://localhost:3000")).Should().BeTrue("with no list, a local page may call a local server");
        none.AcceptsRequest(Request("http://127.0.0.1:8080")).Should().BeTrue();
        none.AcceptsRequest(Request(Evil)).Should().BeFalse("a foreign page (DNS rebinding) is refused");
        none.AcceptsRequest(Request("null")).Should().BeFalse();
        none.CorsEnabled.Should().BeFalse();

        var listed = new OriginPolicy(["HTTPS://App.Example.com:443"]);
        listed.IsAllowed(App).Should().BeTrue("origins compare in canonical form");
        listed.AcceptsRequest(Request(App)).Should().BeTrue();
        listed.AcceptsRequest(Request("http://localhost:3000")).Should().BeFalse("a configured list is the whole list");
        listed.AcceptsRequest(Request("http://app.example.com")).Should().BeFalse("the scheme is part of the origin");

        OriginPolicy.IsPreflight(Request(App, "OPTIONS", preflightMethod: "POST")).Should().BeTrue();
        OriginPolicy.IsPreflight(Request(App, "OPTIONS")).Should().BeFalse();
    }

    private static HttpContext Request(string? origin, string method = "GET", string? preflightMethod = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        if (origin is not null)
        {
            context.Request.Headers.Origin = origin;
        }
        if (preflightMethod is not null)
        {
            context.Request.Headers.AccessControlRequestMethod = preflightMethod;
        }
        return context;
    }

    private static HttpRequestMessage Preflight(string path, string origin, string method = "POST", string headers = "content-type,x-api-key")
    {
        var request = WithOrigin(HttpMethod.Options, path, origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        return request;
    }

    private static HttpRequestMessage WithOrigin(HttpMethod method, string path, string origin)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Origin", origin);
        return request;
    }

    private static List<string> AccessControlHeaders(HttpResponseMessage response) =>
        [.. response.Headers.Select(h => h.Key).Where(k => k.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase))];
}
