using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Engram.Server;
using Engram.Server.Webhooks;
using Engram.Tests.Support;

namespace Engram.Tests.Alerts;

/// <summary>
/// Memory-event webhooks (issue 19) against a real receiver that checks every signature: created, updated and deleted in
/// order on both backends; retries with backoff; a dead receiver that never slows or fails a write; dead letters retried
/// on request; pending deliveries and dead letters surviving a restart, with nothing sent twice.
/// </summary>
public sealed class MemoryEventWebhookTests
{
    private static Action<EngramServerOptions> Hooks(string url, int maxAttempts = 6, int retryMs = 50) => o =>
    {
        o.Webhooks.Urls = url;
        o.Webhooks.Secret = SignedWebhookReceiver.Secret;
        o.Webhooks.MaxAttempts = maxAttempts;
        o.Webhooks.RetryBaseMilliseconds = retryMs;
    };

    private static async Task<List<JsonElement>> DeliveriesAsync(EngramServer server, string state) =>
        [.. (await server.Client.GetFromJsonAsync<JsonElement>($"/v1/admin/webhooks/deliveries?state={state}")).GetProperty("deliveries").EnumerateArray()];

    private static async Task<List<JsonElement>> WaitForAsync(EngramServer server, string state, int count)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(25))
        {
            var list = await DeliveriesAsync(server, state);
            if (list.Count >= count || DateTime.UtcNow > deadline)
            {
                return list;
            }
        }
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Created_updated_and_deleted_reach_the_receiver_signed_in_order_and_a_failing_one_is_retried(Backend backend)
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var server = await EngramServer.StartAsync(backend, Hooks(hook.Url));
        var id = (await server.CreateAsync(new { content = "the webhook test memory", user_id = "alice" })).GetProperty("id").GetString()!;
        (await server.Client.PatchAsync($"/v1/memories/{id}", new StringContent("""{"content":"the webhook test memory, edited"}""", Encoding.UTF8, "application/json")))
            .EnsureSuccessStatusCode();
        (await server.Client.DeleteAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        var created = await hook.NextAsync();
        created.Event.Should().Be(WebhookOptions.Created);
        created.Body.GetProperty("memory_id").GetString().Should().Be(id);
        created.Body.GetProperty("tenant").GetString().Should().Be("default");
        created.Body.GetProperty("reason").GetString().Should().Be("created");
        created.Body.GetProperty("version").GetInt64().Should().Be(1);
        // The memory as created (the history's record); "memory" is the memory now, null here once the edit followed.
        created.Body.GetProperty("changes").GetRawText().Should().Contain("alice").And.Contain("the webhook test memory");
        var updated = await hook.NextAsync();
        updated.Event.Should().Be(WebhookOptions.Updated);
        updated.Body.GetProperty("changes").GetRawText().Should().Contain("edited");
        updated.Body.GetProperty("seq").GetInt64().Should().BeGreaterThan(created.Body.GetProperty("seq").GetInt64());
        var deleted = await hook.NextAsync();
        deleted.Event.Should().Be(WebhookOptions.Deleted);
        deleted.Body.GetProperty("memory").ValueKind.Should().Be(JsonValueKind.Null);
        new[] { created.DeliveryId, updated.DeliveryId, deleted.DeliveryId }.Should().OnlyHaveUniqueItems();

        // Two 500s, then success: delivered on the third attempt, the log says so.
        hook.FailNext = 2;
        var second = (await server.CreateAsync(new { content = "retried delivery" })).GetProperty("id").GetString()!;
        (await hook.NextAsync()).Body.GetProperty("memory_id").GetString().Should().Be(second);
        var delivered = await WaitForAsync(server, "delivered", 4);
        delivered.Should().HaveCount(4);
        delivered[0].GetProperty("memory_id").GetString().Should().Be(second);
        delivered[0].GetProperty("attempts").GetInt32().Should().Be(3);
        delivered[0].TryGetProperty("body", out _).Should().BeFalse("the log never shows a memory's content");
        hook.BadSignatures.Should().Be(0);
        (await server.Client.GetAsync("/v1/admin/webhooks/deliveries?state=lost")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await server.Client.PostAsync("/v1/admin/webhooks/deliveries/nope/retry", null)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    /// <summary>
    /// Found by the probe: the receiver's answer body was read whole before the delivery counted, so a body that never
    /// ends failed every attempt (and one sent fast grew the server by gigabytes, up to HttpClient's 2 GB buffer).
    /// Only the status counts.
    /// </summary>
    [Fact]
    public async Task A_receiver_whose_answer_body_never_ends_is_delivered_on_its_status()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        hook.EndlessBody = true;
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            Hooks(hook.Url, maxAttempts: 2)(o);
            o.Webhooks.TimeoutSeconds = 2;
        });
        var id = (await server.CreateAsync(new { content = "endless answer body" })).GetProperty("id").GetString()!;

        (await hook.NextAsync()).Body.GetProperty("memory_id").GetString().Should().Be(id);
        var delivered = await WaitForAsync(server, "delivered", 1);
        delivered.Should().ContainSingle().Which.GetProperty("last_status").GetInt32().Should().Be(200);
        delivered[0].GetProperty("attempts").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task A_dead_receiver_never_fails_a_write_its_deliveries_become_dead_letters_and_survive_a_restart_without_repeats()
    {
        using var data = new TempDirectory();
        var port = EngramServer.FreePort(); // nothing listens there yet
        var url = $"http://127.0.0.1:{port}/hook";
        string first;
        await using (var server = await EngramServer.StartAsync(data.Path, Hooks(url, maxAttempts: 2)))
        {
            first = (await server.CreateAsync(new { content = "dead letter one" })).GetProperty("id").GetString()!;
            await server.CreateAsync(new { content = "dead letter two" });
            var dead = await WaitForAsync(server, "dead", 2);
            dead.Should().HaveCount(2);
            dead.Should().OnlyContain(d => d.GetProperty("attempts").GetInt32() == 2 && d.GetProperty("last_error").GetString()!.Length > 0);
        }

        // Restarted with a long retry delay: the dead letters are still listed; a new memory's delivery stays pending.
        await using (var server = await EngramServer.StartAsync(data.Path, Hooks(url, maxAttempts: 50, retryMs: 600_000)))
        {
            (await DeliveriesAsync(server, "dead")).Should().HaveCount(2);
            await server.CreateAsync(new { content = "pending across a restart" });
            for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(25))
            {
                if ((await DeliveriesAsync(server, "pending")) is [var p] && p.GetProperty("attempts").GetInt32() >= 1)
                {
                    break;
                }
            }
            (await DeliveriesAsync(server, "pending")).Single().GetProperty("attempts").GetInt32().Should().BeGreaterThanOrEqualTo(1);
        }

        await using var hook = await SignedWebhookReceiver.StartAsync(port);
        await using var again = await EngramServer.StartAsync(data.Path, Hooks(url));
        var resumed = await hook.NextAsync();
        resumed.Body.GetProperty("memory").GetProperty("content").GetString().Should().Be("pending across a restart");
        var deadOne = (await DeliveriesAsync(again, "dead")).Single(d => d.GetProperty("memory_id").GetString() == first);
        var retried = await again.Client.PostAsync($"/v1/admin/webhooks/deliveries/{deadOne.GetProperty("id").GetString()}/retry", null);
        retried.StatusCode.Should().Be(HttpStatusCode.OK);
        var redelivered = await hook.NextAsync();
        redelivered.Body.GetProperty("memory_id").GetString().Should().Be(first);
        redelivered.DeliveryId.Should().Be(deadOne.GetProperty("id").GetString(), "a retry keeps the delivery id, so a receiver can drop repeats");
        (await WaitForAsync(again, "delivered", 2)).Should().HaveCount(2);
        (await DeliveriesAsync(again, "dead")).Should().ContainSingle();
        hook.Posts.Should().Be(2, "the change log is not replayed after a restart: only the pending delivery and the retried one");
    }

    [Fact]
    public void The_signature_covers_the_body_the_secret_and_the_time()
    {
        var body = Encoding.UTF8.GetBytes("""{"event":"memory.created"}""");
        var now = new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);
        var header = WebhookSignature.Sign("secret-0123456789", now.ToUnixTimeSeconds(), body);
        header.Should().MatchRegex("^t=[0-9]+,v1=[0-9a-f]{64}$");
        WebhookSignature.Verify("secret-0123456789", header, body, now.AddSeconds(30), TimeSpan.FromMinutes(5)).Should().BeTrue();
        WebhookSignature.Verify("secret-0123456789", header, Encoding.UTF8.GetBytes("""{"event":"memory.deleted"}"""), now, TimeSpan.FromMinutes(5)).Should().BeFalse();
        WebhookSignature.Verify("another-secret-000", header, body, now, TimeSpan.FromMinutes(5)).Should().BeFalse();
        WebhookSignature.Verify("secret-0123456789", header, body, now.AddMinutes(10), TimeSpan.FromMinutes(5)).Should().BeFalse("an old signature is a replay");
        WebhookSignature.Verify("secret-0123456789", null, body, now, TimeSpan.FromMinutes(5)).Should().BeFalse();
        new WebhookOptions { Urls = "http://a.example/hook", Secret = "short", Events = "memory.created,memory.moved" }.Validate().Should().HaveCount(2);
    }

    [Fact]
    public async Task Search_performed_is_sent_signed_only_when_named_with_the_route_query_scope_and_top_results()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            Hooks(hook.Url)(o);
            o.Webhooks.Events = $"{WebhookOptions.Created},{WebhookOptions.SearchPerformed}";
        });
        var id = (await server.CreateAsync(new { content = "orchids need bright indirect light", user_id = "alice" })).GetProperty("id").GetString()!;
        var rest = await server.SearchAsync(new { query = "orchids light", k = 3, filters = new { user_id = "alice" } });
        rest.Should().ContainSingle();
        (await server.PostJsonAsync("/v1/memories/search", """{"query":"bright orchids","user_id":"alice","top_k":2}""")).EnsureSuccessStatusCode();

        var received = new List<SignedWebhookReceiver.Received> { await hook.NextAsync(), await hook.NextAsync(), await hook.NextAsync() };
        received.Select(r => r.Event).Should().BeEquivalentTo([WebhookOptions.Created, WebhookOptions.SearchPerformed, WebhookOptions.SearchPerformed]);
        var searches = received.Where(r => r.Event == WebhookOptions.SearchPerformed).Select(r => r.Body).ToDictionary(b => b.GetProperty("route").GetString()!);
        searches.Keys.Should().BeEquivalentTo(["rest", "mem0"]);
        var viaRest = searches["rest"];
        viaRest.GetProperty("event").GetString().Should().Be(WebhookOptions.SearchPerformed);
        viaRest.GetProperty("tenant").GetString().Should().Be("default");
        viaRest.GetProperty("query").GetString().Should().Be("orchids light");
        viaRest.GetProperty("k").GetInt32().Should().Be(3);
        viaRest.GetProperty("filters").GetProperty("user_id").GetString().Should().Be("alice");
        viaRest.GetProperty("results").GetInt32().Should().Be(1);
        var top = viaRest.GetProperty("top").EnumerateArray().Single();
        top.GetProperty("id").GetString().Should().Be(id);
        top.GetProperty("score").GetDouble().Should().BeApproximately(rest[0].GetProperty("score").GetDouble(), 1e-5);
        viaRest.GetProperty("latency_ms").GetDouble().Should().BeGreaterThan(0);
        searches["mem0"].GetProperty("query").GetString().Should().Be("bright orchids");
        searches["mem0"].GetProperty("k").GetInt32().Should().Be(2);
        searches["mem0"].GetProperty("filters").GetProperty("user_id").GetString().Should().Be("alice");
        hook.BadSignatures.Should().Be(0);

        (await DeliveriesAsync(server, "delivered")).Select(d => d.GetProperty("event").GetString()).Should().Contain(WebhookOptions.SearchPerformed);
        MemoryEventWebhooks.RouteOf("/mcp").Should().Be("mcp");
        MemoryEventWebhooks.RouteOf("/ui/search").Should().Be("ui");
        MemoryEventWebhooks.RouteOf("/v1/chat").Should().Be("chat");
        MemoryEventWebhooks.RouteOf(null).Should().Be("internal");
        new WebhookOptions { Urls = "https://hooks.example/x", Secret = "0123456789abcdef", Events = "search.performed,memory.created" }.Validate().Should().BeEmpty();
        new WebhookOptions().EventSet.Should().NotContain(WebhookOptions.SearchPerformed, "off unless named");
    }
}
