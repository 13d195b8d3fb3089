using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Embeddings;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Engram.Server.Alerts;
using Engram.Server.Operations;
using Engram.Tests.Embeddings.OpenAi;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Engram.Tests.Alerts;

/// <summary>
/// Every alert rule through a channel (issue 19): a real server evaluating every second, a real fault (a failing or slow
/// OpenAI-compatible embedder on loopback, a failing scripted model, a threshold above the real free disk space, a backup
/// folder that cannot be created, a change the index follower cannot apply), the alert arriving once on the signed
/// webhook (the receiver verifies every signature and keeps only verified posts), then its resolved message; the cooldown
/// holds a repeat back (recorded, not sent) and an escalation goes out whatever the cooldown.
/// </summary>
public sealed class AlertRuleTests
{
    private static Task<EngramServer> StartAsync(SignedWebhookReceiver hook, Action<EngramServerOptions>? more = null, TimeProvider? clock = null) =>
        EngramServer.StartAsync(configure: o =>
        {
            o.Alerts.WebhookUrl = hook.Url;
            o.Alerts.WebhookSecret = SignedWebhookReceiver.Secret;
            o.Alerts.EvaluationIntervalSeconds = 1;
            o.Alerts.MinFreeDiskMB = 1; // whatever the CI disk holds
            o.Alerts.WriteErrors = 1000; // the faults below answer some requests with a 5xx: not what these tests watch
            o.Memory.SampleIntervalMilliseconds = 60_000;
            more?.Invoke(o);
        }, clock: clock);

    /// <summary>The next verified post: <paramref name="event"/> of <paramref name="alert"/>.</summary>
    private static async Task<JsonElement> ExpectAsync(SignedWebhookReceiver hook, string @event, string alert, string? severity = null)
    {
        var received = await hook.NextAsync();
        received.Body.GetProperty("alert").GetString().Should().Be(alert, received.Body.ToString());
        received.Event.Should().Be(@event, received.Body.ToString());
        received.Body.GetProperty("event").GetString().Should().Be(@event);
        if (severity is not null)
        {
            received.Body.GetProperty("severity").GetString().Should().Be(severity);
        }
        return received.Body;
    }

    private static AlertEvent? Latest(AlertService alerts, string alert) => alerts.Journal.Recent(100).FirstOrDefault(e => e.Alert == alert);

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); !condition(); await Task.Delay(25))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("waited 30 s for " + what);
            }
        }
    }

    /// <summary>The fault again inside the cooldown: a firing and a resolution recorded, neither sent.</summary>
    private static async Task CooldownHoldsAsync(AlertService alerts, SignedWebhookReceiver hook, string alert, Func<Task> fault, Func<Task> clear)
    {
        var posts = hook.Posts;
        await fault();
        await UntilAsync(() => Latest(alerts, alert) is { State: AlertEvent.Firing, Notified: false }, alert + " firing again (held back)");
        await clear();
        await UntilAsync(() => Latest(alerts, alert) is { State: AlertEvent.Resolved, Notified: false }, alert + " resolved again (held back)");
        alerts.Pending.Should().Be(0);
        hook.Posts.Should().Be(posts, "inside the cooldown nothing is sent");
    }

    private static void Quiet(SignedWebhookReceiver hook, int posts)
    {
        hook.Unread.Should().Be(0);
        hook.Posts.Should().Be(posts);
        hook.BadSignatures.Should().Be(0);
    }

    private static long FreeMb(EngramServer server) => HealthChecks.FreeDiskBytes(server.DataPath)!.Value / (1024 * 1024);

    private sealed class Switch(bool on)
    {
        private volatile bool _on = on;

        public bool On
        {
            get => _on;
            set => _on = value;
        }
    }

    private static EmbeddingSettings RemoteEmbedder(FakeEmbeddingServer embedder) => new()
    {
        Provider = EmbeddingSettings.OpenAiProvider,
        OpenAi = new OpenAiEmbeddingOptions { BaseUrl = embedder.BaseUrl, Model = "m", Dimensions = 8, MaxRetries = 0 },
    };

    [Fact]
    public async Task An_embedder_answering_503_fires_embedder_failing_once_then_resolved_when_it_recovers()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var embedder = await FakeEmbeddingServer.StartAsync();
        var failing = new Switch(true);
        embedder.Handler = (context, request) => failing.On
            ? FakeEmbeddingServer.WriteTextAsync(context, 503, """{"error":{"message":"overloaded, try later"}}""")
            : embedder.WriteEmbeddingsAsync(context, request);
        await using var server = await StartAsync(hook, o => o.Embeddings = RemoteEmbedder(embedder));

        await server.CreateAsync(new { content = "a memory the embedder cannot embed yet" }); // stored; its vector waits
        var fired = await ExpectAsync(hook, "alert.firing", "embedder_failing", "critical");
        fired.GetProperty("summary").GetString().Should().Contain("vectors wait");

        failing.On = false; // the worker's next retry embeds it
        var resolved = await ExpectAsync(hook, "alert.resolved", "embedder_failing");
        resolved.GetProperty("firing_since").GetDateTimeOffset().Should().BeCloseTo(fired.GetProperty("at").GetDateTimeOffset(), TimeSpan.FromMilliseconds(1));
        server.Services.GetRequiredService<EngramEngine>().Index.PendingVectors.Should().Be(0);
        Quiet(hook, 2); // one fault, one alert: not_ready does not repeat it
    }

    [Fact]
    public async Task A_failing_language_model_fires_llm_failing_once_resolves_on_the_next_good_answer_and_the_cooldown_holds()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var model = await FakeChatModel.StartAsync();
        var failing = new Switch(true);
        model.Responder = _ => failing.On ? FakeReply.Error(500, message: "the model crashed") : FakeReply.Text("all good");
        await using var server = await StartAsync(hook, o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake-model";
            o.Llm.MaxRetries = 0;
        });
        var alerts = server.Services.GetRequiredService<AlertService>();
        async Task ChatAsync(bool ok)
        {
            var response = await server.PostJsonAsync("/v1/chat", """{"messages":[{"role":"user","content":"hello there"}]}""");
            response.IsSuccessStatusCode.Should().Be(ok, await response.Content.ReadAsStringAsync());
        }

        await ChatAsync(ok: false);
        (await ExpectAsync(hook, "alert.firing", "llm_failing", "warning")).GetProperty("summary").GetString().Should().Contain("fake-model");
        failing.On = false;
        await ChatAsync(ok: true);
        await ExpectAsync(hook, "alert.resolved", "llm_failing");

        await CooldownHoldsAsync(alerts, hook, "llm_failing",
            async () => { failing.On = true; await ChatAsync(ok: false); },
            async () => { failing.On = false; await ChatAsync(ok: true); });
        Quiet(hook, 2);
    }

    [Fact]
    public async Task Low_disk_warns_escalates_to_critical_inside_the_cooldown_falls_back_and_resolves_and_the_journal_shows_each_step()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var server = await StartAsync(hook, o => o.Alerts.MinFreeDiskCriticalMB = 1);
        var alerts = server.Services.GetRequiredService<AlertService>();
        var options = server.Services.GetRequiredService<IOptions<EngramServerOptions>>().Value.Alerts;
        var above = (int)(FreeMb(server) + 10_240); // a threshold 10 GB above the real free space

        options.MinFreeDiskMB = above;
        (await ExpectAsync(hook, "alert.firing", "disk_low", "warning")).GetProperty("summary").GetString().Should().Contain("free on the data folder's disk");
        options.MinFreeDiskMB = 1;
        await ExpectAsync(hook, "alert.resolved", "disk_low");

        // Again inside the cooldown: held back; then it gets worse (critical): sent at once, saying it escalated.
        options.MinFreeDiskMB = above;
        await UntilAsync(() => Latest(alerts, "disk_low") is { State: AlertEvent.Firing, Notified: false }, "disk_low firing again, held back");
        options.MinFreeDiskCriticalMB = above;
        var escalated = await ExpectAsync(hook, "alert.escalated", "disk_low", "critical");
        escalated.GetProperty("firing_since").GetDateTimeOffset().Should().BeCloseTo(Latest(alerts, "disk_low")!.FiringSince!.Value, TimeSpan.FromMilliseconds(1));
        alerts.Active().Should().ContainSingle().Which.Severity.Should().Be("critical");

        // Back to a warning: recorded, not sent; then cleared: the resolution is sent (the escalation was).
        options.MinFreeDiskCriticalMB = 1;
        await UntilAsync(() => Latest(alerts, "disk_low") is { State: AlertEvent.Deescalated }, "disk_low back to warning");
        Latest(alerts, "disk_low")!.Severity.Should().Be("warning");
        options.MinFreeDiskMB = 1;
        await ExpectAsync(hook, "alert.resolved", "disk_low", "warning");

        var journal = await server.Client.GetFromJsonAsync<JsonElement>("/v1/admin/alerts?limit=6");
        journal.GetProperty("events").EnumerateArray()
            .Select(e => $"{e.GetProperty("state").GetString()}:{e.GetProperty("severity").GetString()}:{e.GetProperty("notified").GetBoolean()}")
            .Should().Equal(["resolved:warning:True", "deescalated:warning:False", "escalated:critical:True", "firing:warning:False", "resolved:warning:True", "firing:warning:True"],
                "newest first");
        Quiet(hook, 4);
    }

    [Fact]
    public async Task A_failing_readiness_check_no_other_rule_covers_fires_not_ready_once_and_the_cooldown_holds()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var server = await StartAsync(hook);
        var alerts = server.Services.GetRequiredService<AlertService>();
        var health = server.Services.GetRequiredService<IOptions<EngramServerOptions>>().Value.Health;
        var original = health.MinFreeDiskMB;
        var above = (int)(FreeMb(server) + 10_240); // readiness's own disk minimum above the free space; the disk_low rule's stays at 1 MB

        health.MinFreeDiskMB = above;
        var fired = await ExpectAsync(hook, "alert.firing", "not_ready", "critical");
        fired.GetProperty("summary").GetString().Should().StartWith("not ready: disk:");
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        health.MinFreeDiskMB = original;
        await ExpectAsync(hook, "alert.resolved", "not_ready");
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);

        await CooldownHoldsAsync(alerts, hook, "not_ready",
            () => { health.MinFreeDiskMB = above; return Task.CompletedTask; },
            () => { health.MinFreeDiskMB = original; return Task.CompletedTask; });
        Quiet(hook, 2);
    }

    [Fact]
    public async Task A_backup_into_a_folder_that_cannot_be_made_fires_backup_failed_then_backup_stale_and_a_good_backup_resolves_both()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        using var place = new TempDirectory();
        var blocker = Path.Combine(place.Path, "not-a-folder");
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));
        await using var server = await StartAsync(hook, o =>
        {
            o.Backup.Enabled = true; // the schedule's first backup is minutes away: the backups below are the admin API's
            o.Backup.Directory = Path.Combine(blocker, "backups");
            o.Alerts.BackupMaxAgeHours = 1;
        }, clock);
        // After the start (which refuses a folder that cannot be made): a volume gone, a path taken by a file.
        await File.WriteAllTextAsync(blocker, "a file where the backup folder's parent should be");

        var failed = await server.PostJsonAsync("/v1/admin/backups", "{}");
        ((int)failed.StatusCode).Should().BeGreaterThanOrEqualTo(500, await failed.Content.ReadAsStringAsync());
        await ExpectAsync(hook, "alert.firing", "backup_failed", "warning");

        clock.Advance(TimeSpan.FromHours(2)); // no good backup for two hours, the limit is one
        (await ExpectAsync(hook, "alert.firing", "backup_stale", "warning")).GetProperty("summary").GetString().Should().Contain("no backup yet");

        File.Delete(blocker);
        var made = await server.PostJsonAsync("/v1/admin/backups", "{}");
        made.StatusCode.Should().Be(HttpStatusCode.Created, await made.Content.ReadAsStringAsync());
        await ExpectAsync(hook, "alert.resolved", "backup_failed");
        await ExpectAsync(hook, "alert.resolved", "backup_stale");
        Quiet(hook, 4);
    }

    [Fact]
    public async Task Slow_searches_fire_search_slow_once_and_it_resolves_when_they_stop()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var embedder = await FakeEmbeddingServer.StartAsync();
        var slow = new Switch(true);
        embedder.Handler = async (context, request) =>
        {
            if (slow.On)
            {
                await Task.Delay(400); // every query embedding takes 400 ms: every search is slower than that
            }
            await embedder.WriteEmbeddingsAsync(context, request);
        };
        await using var server = await StartAsync(hook, o =>
        {
            o.Embeddings = RemoteEmbedder(embedder);
            o.Alerts.SearchP95Milliseconds = 200;
            o.Alerts.SearchP95CriticalMilliseconds = 600_000;
        });
        await server.CreateAsync(new { content = "the slow search finds this memory" });

        // Eight at once, so at least five land in one evaluation window; again until the alert comes.
        for (var round = 0; hook.Unread == 0 && round < 20; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 8).Select(i => server.SearchAsync(new { query = $"slow search {round} {i}", k = 3 })));
        }
        var fired = await ExpectAsync(hook, "alert.firing", "search_slow", "warning");
        fired.GetProperty("summary").GetString().Should().Contain("search p95");
        slow.On = false;
        await ExpectAsync(hook, "alert.resolved", "search_slow"); // a window without enough searches
        Quiet(hook, 2);
    }

    [Fact]
    public async Task A_change_the_index_cannot_apply_fires_index_lag_escalates_as_the_lag_grows_and_resolves_once_repaired()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var server = await StartAsync(hook, o =>
        {
            o.Alerts.IndexLag = 0;
            o.Alerts.IndexLagCritical = 2;
        });
        var engine = server.Services.GetRequiredService<EngramEngine>();
        var id = (await server.CreateAsync(new { content = "a memory whose row gets damaged" })).GetProperty("id").GetString()!;
        await UntilAsync(() => engine.IndexLag().Entries == 0, "the index to apply the write");

        // A damaged row (its entities column no longer a JSON array) and a change-log entry naming it: every catch-up fails on it, the lag stays.
        using var db = SqliteConnection.Open(((SqliteMemoryStore)engine.Store).DatabasePath);
        void Change() => db.ExecuteNonQuery("INSERT INTO changelog (tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            "default", ChangeRecord.MemoryEntity, id, ChangeRecord.Upsert, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        db.ExecuteNonQuery("UPDATE memories SET entities = '[damaged' WHERE id = ?1", id);
        Change();
        (await ExpectAsync(hook, "alert.firing", "index_lag", "warning")).GetProperty("summary").GetString().Should().Contain("1 changes behind");
        Change();
        Change();
        (await ExpectAsync(hook, "alert.escalated", "index_lag", "critical")).GetProperty("summary").GetString().Should().Contain("3 changes behind");

        db.ExecuteNonQuery("UPDATE memories SET entities = '[]' WHERE id = ?1", id); // repaired: the follower catches up
        await ExpectAsync(hook, "alert.resolved", "index_lag", "critical");
        Quiet(hook, 3);
    }

    [Fact]
    public async Task Memory_at_85_percent_warns_at_95_escalates_inside_the_cooldown_falls_back_and_resolves()
    {
        await using var hook = await SignedWebhookReceiver.StartAsync();
        await using var server = await StartAsync(hook, o => o.Alerts.EvaluationIntervalSeconds = 3600); // the evaluations below are the test's own
        // Ready first: an evaluation while the indexes still load also fires not_ready (seen under a full suite's load).
        for (var attempt = 0; (await server.Client.GetAsync("/health/ready")).StatusCode != HttpStatusCode.OK; attempt++)
        {
            attempt.Should().BeLessThan(300, "the server becomes ready within 30 s");
            await Task.Delay(100);
        }
        var alerts = server.Services.GetRequiredService<AlertService>();
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        async Task<AlertCondition> AtAsync(double ratio)
        {
            // A budget that puts the working set read now at this share of it (90 %: the middle of the warning band).
            monitor.Budget = new MemoryBudget((long)(MemoryMonitor.WorkingSet() / ratio), "test");
            return (await alerts.EvaluateAsync()).Single(c => c.Name == "memory_high");
        }

        (await AtAsync(0.90)).Severity.Should().Be("warning");
        (await ExpectAsync(hook, "alert.firing", "memory_high", "warning")).GetProperty("summary").GetString().Should().Contain("budget");
        (await AtAsync(50)).Severity.Should().Be("critical");
        (await ExpectAsync(hook, "alert.escalated", "memory_high", "critical")).GetProperty("summary").GetString().Should().Contain("writes are shed");
        (await AtAsync(0.90)).Severity.Should().Be("warning");
        (await AtAsync(0.01)).Firing.Should().BeFalse();
        await ExpectAsync(hook, "alert.resolved", "memory_high", "warning");

        var journal = await server.Client.GetFromJsonAsync<JsonElement>("/v1/admin/alerts?limit=4");
        journal.GetProperty("events").EnumerateArray()
            .Select(e => $"{e.GetProperty("state").GetString()}:{e.GetProperty("severity").GetString()}:{e.GetProperty("notified").GetBoolean()}")
            .Should().Equal(["resolved:warning:True", "deescalated:warning:False", "escalated:critical:True", "firing:warning:True"], "newest first");
        Quiet(hook, 3);
    }
}
