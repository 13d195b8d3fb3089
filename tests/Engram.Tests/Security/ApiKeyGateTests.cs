using System.Net;
using System.Text.Json;
using Engram.Core.Security;
using Engram.Server;
using Engram.Server.Http;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Security;

/// <summary>The authentication gate over the real server: header forms, 401/403, tenancy by header, public probes, expiry, revoke and rotate.</summary>
public sealed class ApiKeyGateTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Every_header_form_authenticates_and_the_key_sets_tenant_and_role()
    {
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("acme", Role.Write, name: "writer");

        var forms = new[] { ("Authorization", "Bearer " + key), ("Authorization", "bearer " + key), ("Authorization", "Token " + key), ("X-API-Key", key) };
        for (var i = 0; i < forms.Length; i++)
        {
            var (header, value) = forms[i];
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/memories") { Content = Json($"{{\"content\":\"header form {i}\"}}") };
            request.Headers.TryAddWithoutValidation(header, value);
            var response = await server.Client.SendAsync(request);
            response.StatusCode.Should().Be(HttpStatusCode.Created, $"{header}: {value[..12]}… " + await response.Content.ReadAsStringAsync());
        }
        var listed = await (await server.ClientWithKey(key).GetAsync("/v1/memories")).JsonAsync();
        listed.GetProperty("items").GetArrayLength().Should().Be(4);
        var id = listed.GetProperty("items")[0].GetProperty("id").GetString();
        var history = await (await server.ClientWithKey(key).GetAsync($"/v1/memories/{id}/history")).JsonAsync();
        history.GetProperty("items")[0].GetProperty("actor").GetString().Should().Be("key:writer");

        // The memories are acme's: an admin of another tenant does not see them.
        var other = server.ClientWithKey(await server.CreateKeyAsync("globex", Role.Admin));
        (await (await other.GetAsync("/v1/memories")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task A_missing_unknown_malformed_revoked_or_expired_key_gets_the_same_401_with_www_authenticate()
    {
        var clock = new ManualClock(Start);
        await using var server = await EngramServer.StartAsync(clock: clock);
        var keys = server.Services.GetRequiredService<ApiKeyService>();
        var revoked = await server.CreateKeyAsync("default", Role.Admin);
        var expiring = await server.CreateKeyAsync("default", Role.Admin, expiresAt: Start.AddHours(1));
        (await server.ClientWithKey(revoked).GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.ClientWithKey(expiring).GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        await keys.RevokeAsync(ApiKeyFormat.PrefixOf(revoked), null, "test");
        clock.Advance(TimeSpan.FromHours(1));

        var bodies = new List<string>();
        foreach (var headers in new (string, string)?[]
        {
            null,
            ("Authorization", "Bearer " + ApiKeyFormat.NewKey()),
            ("Authorization", "Bearer not-a-key"),
            ("Authorization", "Basic dXNlcjpwYXNz"),
            ("X-API-Key", ""),
            ("Authorization", "Bearer " + revoked),
            ("X-API-Key", expiring),
        })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
            if (headers is var (name, value))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            var response = await server.Client.SendAsync(request);
            var body = await response.ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
            response.Headers.WwwAuthenticate.ToString().Should().Be("Bearer");
            bodies.Add(WithoutTraceId(body));
        }
        bodies.Distinct().Should().ContainSingle("the answer never tells whether a key exists, was revoked or expired");
        bodies[0].Should().NotContain("egm_").And.NotContain("revoked").And.NotContain("expired");
    }

    [Fact]
    public async Task A_role_below_the_route_or_a_tenant_header_from_a_non_admin_is_403_and_an_admin_may_act_for_another_tenant()
    {
        await using var server = await EngramServer.StartAsync();
        var reader = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Read));
        var writer = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Write));
        var adminKey = await server.CreateKeyAsync("globex", Role.Admin);
        var admin = server.ClientWithKey(adminKey);

        await (await reader.PostAsync("/v1/memories", Json("{\"content\":\"x\"}"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await writer.GetAsync("/v1/admin/keys")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await writer.GetAsync("/v1/admin/audit")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Write), tenant: "globex").GetAsync("/v1/memories"))
            .ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        (await writer.PostAsync("/v1/memories", Json("{\"content\":\"acme's secret plan\"}"))).StatusCode.Should().Be(HttpStatusCode.Created);
        // A wrong method is still 405 for a key that may read, not a 403.
        await (await reader.PutAsync("/v1/stats", Json("{}"))).ShouldBeProblemAsync(HttpStatusCode.MethodNotAllowed);

        (await (await admin.GetAsync("/v1/memories")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0, "globex has no memories");
        var asAcme = server.ClientWithKey(adminKey, tenant: "acme");
        var items = (await (await asAcme.GetAsync("/v1/memories")).JsonAsync()).GetProperty("items");
        items.GetArrayLength().Should().Be(1);
        items[0].GetProperty("content").GetString().Should().Be("acme's secret plan");
        await (await server.ClientWithKey(adminKey, tenant: "bad tenant!").GetAsync("/v1/memories")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "X-Engram-Tenant");
    }

    [Fact]
    public async Task The_probes_answer_without_a_key_and_health_says_whether_auth_is_open_without_key_data()
    {
        await using var server = await EngramServer.StartAsync();
        // Ready first: on a loaded machine the indexes may still be loading, and /health then answers 503 (not ready).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await server.Client.GetAsync("/health/ready")).StatusCode != HttpStatusCode.OK)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the server should become ready");
            await Task.Delay(50);
        }
        (await server.Client.GetStringAsync("/health")).Should().Contain("\"auth\":\"open\"");

        var key = await server.CreateKeyAsync("default", Role.Read);
        (await server.Client.GetAsync("/health/live")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await server.Client.GetAsync("/health")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        await (await server.Client.GetAsync("/v1/stats")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        await (await server.Client.GetAsync("/openapi/v1.json")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        await (await server.Client.GetAsync("/no/such/route")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        var health = await server.ClientWithKey(key).GetStringAsync("/health");
        health.Should().Contain("\"auth\":\"keys\"").And.NotContain("egm_").And.NotContain(key[..12]);
    }

    [Fact]
    public async Task Metrics_needs_a_key_unless_configured_open()
    {
        await using var closed = await EngramServer.StartAsync();
        await closed.CreateKeyAsync("default", Role.Admin);
        await (await closed.Client.GetAsync("/metrics")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);

        await using var open = await EngramServer.StartAsync(configure: o => o.Auth.OpenMetrics = true);
        await open.CreateKeyAsync("default", Role.Admin);
        // No /metrics route yet: the gate lets the request through, so routing answers (404), not the gate (401).
        (await open.Client.GetAsync("/metrics")).StatusCode.Should().NotBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Revoke_and_rotate_through_the_rest_api_take_effect_at_once()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin, name: "ops"));

        var created = await (await admin.PostAsync("/v1/admin/keys", Json("{\"role\":\"write\",\"name\":\"bot\",\"scope\":{\"user_id\":\"alice\"}}"))).JsonAsync();
        var botKey = created.GetProperty("key").GetString()!;
        created.GetProperty("tenant").GetString().Should().Be("acme");
        created.GetProperty("scope").GetProperty("user_id").GetString().Should().Be("alice");
        var bot = server.ClientWithKey(botKey);
        (await bot.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK); // now cached

        var rotated = await (await admin.PostAsync($"/v1/admin/keys/{created.GetProperty("id").GetString()}/rotate", null)).JsonAsync();
        var newKey = rotated.GetProperty("key").GetString()!;
        newKey.Should().NotBe(botKey);
        rotated.GetProperty("name").GetString().Should().Be("bot");
        await (await bot.GetAsync("/v1/memories")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        var botAgain = server.ClientWithKey(newKey);
        (await botAgain.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);

        var listed = await admin.GetStringAsync("/v1/admin/keys");
        listed.Should().NotContain(botKey).And.NotContain(newKey).And.NotContain("hash");
        (await admin.DeleteAsync($"/v1/admin/keys/{rotated.GetProperty("prefix").GetString()}")).StatusCode.Should().Be(HttpStatusCode.OK);
        await (await botAgain.GetAsync("/v1/memories")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);

        // Another tenant's key is not found by this tenant's admin.
        var foreign = await server.CreateKeyAsync("globex", Role.Read);
        await (await admin.DeleteAsync($"/v1/admin/keys/{ApiKeyFormat.PrefixOf(foreign)}")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        // A key is created in the tenant the admin names, never one from the body.
        await (await admin.PostAsync("/v1/admin/keys", Json("{\"role\":\"read\",\"tenant\":\"globex\"}"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_scoped_admin_key_may_not_manage_keys()
    {
        await using var server = await EngramServer.StartAsync();
        var scoped = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin, new KeyScope("alice", null)));
        await (await scoped.PostAsync("/v1/admin/keys", Json("{\"role\":\"admin\"}"))).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Every_route_of_the_real_server_declares_an_access_rule()
    {
        await using var server = await EngramServer.StartAsync();
        var endpoints = server.Services.GetServices<EndpointDataSource>().SelectMany(s => s.Endpoints).ToList();
        endpoints.Should().NotBeEmpty();
        endpoints.Where(e => e.Metadata.GetMetadata<AccessRule>() is null).Select(e => e.DisplayName).Should().BeEmpty();
        endpoints.Where(e => e.Metadata.GetMetadata<AccessRule>()!.IsPublic).Select(e => ((RouteEndpoint)e).RoutePattern.RawText)
            // Telegram sends no key (the webhook checks its secret token); the UI's login form (GET, POST) and its stylesheet and script.
            .Should().BeEquivalentTo("/health/live", "/health/ready", "/v1/telegram/webhook", "/ui/login", "/ui/login", "/ui/assets/{name}");
    }

    [Theory]
    [InlineData("http://127.0.0.1:7070", true)]
    [InlineData("http://localhost:7070", true)]
    [InlineData("http://[::1]:7070", true)]
    [InlineData("https://127.0.0.5:7443", true)]
    [InlineData("http://0.0.0.0:7070", false)]
    [InlineData("http://*:7070", false)]
    [InlineData("http://+:7070", false)]
    [InlineData("http://[::]:7070", false)]
    [InlineData("http://192.168.1.20:7070", false)]
    [InlineData("http://engram.example.com:7070", false)]
    public void Loopback_addresses_are_told_from_the_rest(string url, bool loopback) =>
        ListenAddresses.IsLoopback(url).Should().Be(loopback);

    [Fact]
    public async Task Asked_to_listen_beyond_loopback_with_no_keys_the_server_refuses_before_binding()
    {
        using var data = new TempDirectory();
        var url = $"http://0.0.0.0:{EngramServer.FreePort()}";
        var refuse = () => ServerApplication.Build([], o => o.DataPath = data.Path, urls: url);
        refuse.Should().Throw<OpenModeRefusedException>().Which.Message.Should().Contain("engram keys create");
    }

    [Fact]
    public async Task On_a_non_loopback_address_revoking_the_last_key_closes_every_route_instead_of_opening_them()
    {
        using var data = new TempDirectory();
        string key;
        await using (var store = Core.Storage.Sqlite.SqliteMemoryStore.Open(data.Path))
        await using (var trail = new AuditTrail(store))
        {
            key = (await new ApiKeyService(store, trail).CreateAsync(new NewApiKey("default", Role.Admin), "test")).Secret;
        }
        var port = EngramServer.FreePort();
        await using var app = ServerApplication.Build([], o =>
        {
            o.DataPath = data.Path;
            o.Memory.BudgetMB = EngramServer.TestProcessBudgetMB;
        }, urls: $"http://0.0.0.0:{port}");
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        (await client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);

        await app.Services.GetRequiredService<ApiKeyService>().RevokeAsync(ApiKeyFormat.PrefixOf(key), null, "test");
        client.DefaultRequestHeaders.Authorization = null;
        await (await client.GetAsync("/v1/stats")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        (await client.GetStringAsync("/health/live")).Should().Contain("ok");
        await app.StopAsync();
    }

    [Fact]
    public async Task Keys_record_when_they_were_last_used()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin));
        string? lastUsed = null;
        for (var i = 0; i < 50 && lastUsed is null; i++)
        {
            var keys = await (await admin.GetAsync("/v1/admin/keys")).JsonAsync();
            lastUsed = keys.GetProperty("items")[0].GetProperty("last_used_at").GetString();
            await Task.Delay(lastUsed is null ? 100 : 0);
        }
        lastUsed.Should().NotBeNull("the first use is recorded (then at most once a minute)");
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    private static string WithoutTraceId(JsonElement body) =>
        JsonSerializer.Serialize(body.EnumerateObject().Where(p => p.Name != "trace_id").ToDictionary(p => p.Name, p => p.Value.ToString()));
}
