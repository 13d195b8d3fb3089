using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core.Storage.Postgres;
using Engram.Server;
using Engram.Server.Webhooks;
using Engram.Tests.Alerts;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// Memory-event webhooks with several instances on one PostgreSQL database (MemoryEventWebhooks.Shared.cs): each event
/// reaches the receiver once, not once per instance; the instance that delivers hands over to another when it stops or
/// loses its database session; dead letters, retries and search events asked of any instance go through the one that delivers.
/// </summary>
public sealed class PostgresWebhookTests
{
    private static Action<EngramServerOptions> Hooks(string url, int maxAttempts = 6, string? events = null) => o =>
    {
        o.Webhooks.Urls = url;
        o.Webhooks.Secret = SignedWebhookReceiver.Secret;
        o.Webhooks.MaxAttempts = maxAttempts;
        o.Webhooks.RetryBaseMilliseconds = 50;
        if (events is not null)
        {
            o.Webhooks.Events = events;
        }
    };

    private static async Task<JsonElement> DeliveriesAsync(EngramServer server, string? state = null) =>
        await server.Client.GetFromJsonAsync<JsonElement>("/v1/admin/webhooks/deliveries" + (state is null ? "" : "?state=" + state));

    private static async Task<bool> DeliveringAsync(EngramServer server) => (await DeliveriesAsync(server)).GetProperty("delivering").GetBoolean();

    /// <summary>Waits until exactly one of <paramref name="servers"/> delivers; returns it.</summary>
    private static async Task<EngramServer> DelivererAsync(params EngramServer[] servers)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(50))
        {
            var delivering = new List<EngramServer>();
            foreach (var server in servers)
            {
                if (await DeliveringAsync(server))
                {
                    delivering.Add(server);
                }
            }
            if (delivering.Count == 1)
            {
                return delivering[0];
            }
            DateTime.UtcNow.Should().BeBefore(deadline, "one instance should take the delivery lock");
        }
    }

    /// <summary>The memory ids of the next <paramref name="count"/> deliveries, then proof that nothing else arrives for a while.</summary>
    private static async Task<List<string>> ReceiveExactlyAsync(SignedWebhookReceiver hook, int count)
    {
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            ids.Add((await hook.NextAsync()).Body.GetProperty("memory_id").GetString()!);
        }
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // longer than an instance takes to try the lock and deliver
        hook.Unread.Should().Be(0, "each event is delivered by one instance, once");
        return ids;
    }

    [Fact]
    public async Task Two_instances_deliver_each_memory_event_once_and_hand_over_when_one_stops_or_loses_its_session()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        using var location = await StoreLocation.CreateAsync(Backend.Postgres);
        var a = await EngramServer.StartAsync(location.Value, Hooks(hook.Url));
        await using var b = await EngramServer.StartAsync(location.Value, Hooks(hook.Url));
        await using var c = await EngramServer.StartAsync(location.Value, Hooks(hook.Url));
        try
        {
            var first = await DelivererAsync(a, b, c);
            var created = new List<string>();
            foreach (var (server, i) in new[] { a, b, c, a, b, c }.Select((s, i) => (s, i)))
            {
                created.Add((await server.CreateAsync(new { content = $"written through instance {i % 3}, number {i}" })).GetProperty("id").GetString()!);
            }
            (await ReceiveExactlyAsync(hook, created.Count)).Should().Equal(created, "in change-log order, once each");
            // Every instance shows the same deliveries: the others read the state the delivering one stores.
            foreach (var server in new[] { a, b, c })
            {
                var view = await DeliveriesAsync(server, "delivered");
                view.GetProperty("deliveries").GetArrayLength().Should().Be(created.Count);
            }

            // The delivering instance stops: another takes over from the stored cursor.
            await first.DisposeAsync();
            var rest = new[] { a, b, c }.Where(s => s != first).ToArray();
            var second = await DelivererAsync(rest);
            var more = new List<string>();
            foreach (var server in rest)
            {
                more.Add((await server.CreateAsync(new { content = "after the first deliverer stopped " + more.Count })).GetProperty("id").GetString()!);
            }
            (await ReceiveExactlyAsync(hook, more.Count)).Should().Equal(more);

            // Its database session is cut (as when its connection or process dies): it notices, and one instance delivers again.
            await TerminateLockSessionAsync(location.Value);
            await Task.Delay(TimeSpan.FromSeconds(2.5)); // past the holder's check
            await DelivererAsync(rest);
            var last = (await second.CreateAsync(new { content = "after the session was cut" })).GetProperty("id").GetString()!;
            (await ReceiveExactlyAsync(hook, 1)).Should().Equal(last);
            hook.BadSignatures.Should().Be(0);
        }
        finally
        {
            await a.DisposeAsync(); // a second dispose of the one stopped above does nothing
            await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_dead_letter_is_listed_and_retried_through_an_instance_that_does_not_deliver_and_its_searches_are_delivered_too()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        using var location = await StoreLocation.CreateAsync(Backend.Postgres);
        var events = $"{WebhookOptions.Created},{WebhookOptions.SearchPerformed}";
        await using var a = await EngramServer.StartAsync(location.Value, Hooks(hook.Url, maxAttempts: 1, events));
        await using var b = await EngramServer.StartAsync(location.Value, Hooks(hook.Url, maxAttempts: 1, events));
        var deliverer = await DelivererAsync(a, b);
        var other = deliverer == a ? b : a;

        hook.FailAll = true;
        var id = (await other.CreateAsync(new { content = "a delivery that dies at first" })).GetProperty("id").GetString()!;
        JsonElement dead = default;
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            var list = (await DeliveriesAsync(other, "dead")).GetProperty("deliveries");
            if (list.GetArrayLength() == 1)
            {
                dead = list[0];
                break;
            }
        }
        dead.ValueKind.Should().Be(JsonValueKind.Object, "the instance that does not deliver lists the stored dead letter");
        dead.GetProperty("memory_id").GetString().Should().Be(id);
        (await DeliveriesAsync(other)).GetProperty("delivering").GetBoolean().Should().BeFalse();

        hook.FailAll = false;
        var retried = await other.Client.PostAsync($"/v1/admin/webhooks/deliveries/{dead.GetProperty("id").GetString()}/retry", null);
        retried.EnsureSuccessStatusCode();
        (await retried.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString().Should().Be(WebhookDelivery.Pending);
        var received = await hook.NextAsync();
        received.Body.GetProperty("memory_id").GetString().Should().Be(id);
        received.DeliveryId.Should().Be(dead.GetProperty("id").GetString(), "the retried dead letter, not a new delivery");
        (await other.Client.PostAsync("/v1/admin/webhooks/deliveries/nope/retry", null)).StatusCode.Should().Be(System.Net.HttpStatusCode.NotFound);

        // A search answered by the instance that does not deliver is delivered, once, by the one that does.
        await other.SearchAsync(new { query = "delivery", k = 3 });
        var search = await hook.NextAsync();
        search.Event.Should().Be(WebhookOptions.SearchPerformed);
        search.Body.GetProperty("query").GetString().Should().Be("delivery");
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        hook.Unread.Should().Be(0);
    }

    [Fact]
    public async Task The_webhooks_file_of_an_instance_from_before_is_taken_over_once()
    {
        // An instance that delivered from its own webhooks.json (here: a dead letter) before its store was shared.
        using var data = new TempDirectory();
        var dead = $"http://127.0.0.1:{EngramServer.FreePort()}/hook";
        await using (var before = await EngramServer.StartAsync(data.Path, Hooks(dead, maxAttempts: 1)))
        {
            await before.CreateAsync(new { content = "its delivery dies" });
            for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(50))
            {
                if ((await DeliveriesAsync(before, "dead")).GetProperty("deliveries").GetArrayLength() == 1)
                {
                    break;
                }
            }
        }
        File.Exists(Path.Combine(data.Path, MemoryEventWebhooks.FileName)).Should().BeTrue();

        using var location = await StoreLocation.CreateAsync(Backend.Postgres);
        await using var shared = await EngramServer.StartAsync(location.Value, o =>
        {
            Hooks(dead, maxAttempts: 1)(o);
            o.DataPath = data.Path; // the instance's own files: its webhooks.json among them
        });
        await DelivererAsync(shared);
        (await DeliveriesAsync(shared, "dead")).GetProperty("deliveries").GetArrayLength().Should().Be(1, "the file's dead letter is in the shared state");
        File.Exists(Path.Combine(data.Path, MemoryEventWebhooks.FileName)).Should().BeFalse("taken over once");
        File.Exists(Path.Combine(data.Path, MemoryEventWebhooks.FileName + ".taken-over")).Should().BeTrue();

        // The file's cursor counted another store's changes (it came from a SQLite folder): delivering goes on from now.
        await using var hook = await SignedWebhookReceiver.StartAsync(new Uri(dead).Port);
        var id = (await shared.CreateAsync(new { content = "written after the take-over" })).GetProperty("id").GetString()!;
        (await ReceiveExactlyAsync(hook, 1)).Should().Equal(id);
    }

    /// <summary>Ends the database session holding the webhooks lock, as a dropped connection or a dead process would.</summary>
    private static async Task TerminateLockSessionAsync(string url)
    {
        await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::int4::oid AND objsubid = 2", connection);
        command.Parameters.AddWithValue(Core.Storage.Postgres.PostgresMemoryStore.JobKey(Core.Storage.ExclusiveJobs.Webhooks));
        (await command.ExecuteScalarAsync()).Should().Be(1L, "one session holds the webhooks lock");
    }
}
