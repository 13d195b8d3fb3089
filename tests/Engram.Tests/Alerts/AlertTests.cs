using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core;
using Engram.Server;
using Engram.Server.Alerts;
using Engram.Server.Operations;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Alerts;

/// <summary>
/// Alerts end to end (issue 19): a real server, a fake Telegram Bot API and a signed webhook receiver on loopback Kestrel.
/// A fault (a tiny memory budget; read-only mode making writes fail) fires exactly one alert to each Telegram chat and
/// one signed webhook, then one "resolved" each; the cooldown holds a repeat back (a hand-moved clock, no waiting).
/// </summary>
public sealed class AlertTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    private static async Task<EngramServer> StartAsync(FakeTelegramApi telegram, SignedWebhookReceiver hook, ManualClock clock, Action<EngramServerOptions>? more = null) =>
        await EngramServer.StartAsync(configure: o =>
        {
            o.Telegram.BotToken = FakeTelegramApi.Token;
            o.Telegram.ApiBaseUrl = telegram.Url;
            o.Alerts.TelegramChatIds = "42, -100777";
            o.Alerts.WebhookUrl = hook.Url;
            o.Alerts.WebhookSecret = SignedWebhookReceiver.Secret;
            o.Alerts.EvaluationIntervalSeconds = 3600; // the evaluations below are the test's own
            o.Alerts.MinFreeDiskMB = 1; // whatever the CI disk holds
            o.Memory.SampleIntervalMilliseconds = 60_000;
            more?.Invoke(o);
        }, clock: clock);

    private static async Task<List<FakeTelegramApi.SentMessage>> TwoChatsAsync(FakeTelegramApi telegram)
    {
        var messages = new List<FakeTelegramApi.SentMessage> { await telegram.NextAsync(), await telegram.NextAsync() };
        messages.Select(m => m.ChatId).Should().BeEquivalentTo([42L, -100777L]);
        return messages;
    }

    [Fact]
    public async Task A_tiny_memory_budget_fires_one_alert_and_one_resolved_per_channel_and_the_cooldown_holds_a_repeat()
    {
        await using var telegram = await FakeTelegramApi.StartAsync();
        await using var hook = await SignedWebhookReceiver.StartAsync();
        var clock = new ManualClock(Start);
        await using var server = await StartAsync(telegram, hook, clock);
        var alerts = server.Services.GetRequiredService<AlertService>();
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        await server.Services.GetRequiredService<EngramEngine>().EnsureIndexedAsync(); // while they load the server is not ready (an alert of its own)
        (await alerts.EvaluateAsync()).Where(c => c.Firing).Should().BeEmpty("a healthy server fires nothing");

        telegram.TooManyRequests = 1; // Telegram's 429 with retry_after first: retried, still one message per chat
        monitor.Budget = new MemoryBudget(1024 * 1024, "test");
        var firing = (await alerts.EvaluateAsync()).Where(c => c.Firing).ToList();
        firing.Select(c => c.Name).Should().Equal(["memory_high"], "one fault, one alert");
        firing[0].Severity.Should().Be("critical");
        (await alerts.EvaluateAsync()).Where(c => c.Firing).Select(c => c.Name).Should().Equal(["memory_high"]); // still firing: no new message

        var fired = await TwoChatsAsync(telegram);
        fired.Should().OnlyContain(m => m.Text.Contains("memory_high", StringComparison.Ordinal) && m.Text.Contains("[critical]", StringComparison.Ordinal));
        var hookFired = await hook.NextAsync();
        hookFired.Event.Should().Be("alert.firing");
        hookFired.Body.GetProperty("alert").GetString().Should().Be("memory_high");
        hookFired.Body.GetProperty("at").GetDateTimeOffset().Should().Be(Start);

        monitor.Budget = new MemoryBudget(1L << 40, "test");
        (await alerts.EvaluateAsync()).Where(c => c.Firing).Should().BeEmpty();
        (await TwoChatsAsync(telegram)).Should().OnlyContain(m => m.Text.StartsWith("✅ Resolved: memory_high", StringComparison.Ordinal));
        var hookResolved = await hook.NextAsync();
        hookResolved.Event.Should().Be("alert.resolved");
        hookResolved.Body.GetProperty("firing_since").GetDateTimeOffset().Should().Be(Start);

        // The same fault again 5 minutes later, inside the 15-minute cooldown: recorded, not sent (nor its resolution).
        clock.Advance(TimeSpan.FromMinutes(5));
        monitor.Budget = new MemoryBudget(1024 * 1024, "test");
        await alerts.EvaluateAsync();
        monitor.Budget = new MemoryBudget(1L << 40, "test");
        await alerts.EvaluateAsync();
        // 16 minutes after the first message the cooldown is over: the next firing is sent.
        clock.Advance(TimeSpan.FromMinutes(11));
        monitor.Budget = new MemoryBudget(1024 * 1024, "test");
        await alerts.EvaluateAsync();
        monitor.Budget = new MemoryBudget(1L << 40, "test");
        var third = await TwoChatsAsync(telegram);
        third.Should().OnlyContain(m => m.Text.Contains("memory_high", StringComparison.Ordinal) && m.Text.Contains("since 2026-12-03 12:16:00", StringComparison.Ordinal),
            "the messages sent next are the firing after the cooldown: the repeat inside it sent nothing");
        (await hook.NextAsync()).Body.GetProperty("at").GetDateTimeOffset().Should().Be(Start.AddMinutes(16));

        var list = await server.Client.GetFromJsonAsync<JsonElement>("/v1/admin/alerts");
        list.GetProperty("enabled").GetBoolean().Should().BeTrue();
        list.GetProperty("active").EnumerateArray().Select(a => a.GetProperty("alert").GetString()).Should().Equal(["memory_high"]);
        var events = list.GetProperty("events").EnumerateArray()
            .Select(e => $"{e.GetProperty("state").GetString()}:{e.GetProperty("notified").GetBoolean()}").ToList();
        events.Should().Equal(["firing:True", "resolved:False", "firing:False", "resolved:True", "firing:True"], "newest first");
        await alerts.EvaluateAsync();
        (await TwoChatsAsync(telegram)).Should().OnlyContain(m => m.Text.StartsWith("✅ Resolved", StringComparison.Ordinal));
        await hook.NextAsync();
        telegram.Count.Should().Be(8, "two chats times fire, resolved, fire, resolved");
        hook.Posts.Should().Be(4);
        hook.BadSignatures.Should().Be(0);
        File.Exists(Path.Combine(server.DataPath, AlertJournal.FileName)).Should().BeTrue();
    }

    [Fact]
    public async Task Read_only_mode_makes_writes_fail_and_fires_write_errors_once_and_the_journal_survives_a_restart()
    {
        await using var telegram = await FakeTelegramApi.StartAsync();
        await using var hook = await SignedWebhookReceiver.StartAsync();
        using var data = new TempDirectory();
        var clock = new ManualClock(Start);
        await using (var server = await EngramServer.StartAsync(data.Path, o =>
        {
            o.Telegram.BotToken = FakeTelegramApi.Token;
            o.Telegram.ApiBaseUrl = telegram.Url;
            o.Alerts.TelegramChatIds = "42";
            o.Alerts.WebhookUrl = hook.Url;
            o.Alerts.WebhookSecret = SignedWebhookReceiver.Secret;
            o.Alerts.EvaluationIntervalSeconds = 3600;
            o.Alerts.MinFreeDiskMB = 1;
            o.Alerts.WriteErrors = 3;
            o.Memory.SampleIntervalMilliseconds = 60_000;
        }, clock))
        {
            var alerts = server.Services.GetRequiredService<AlertService>();
            await server.Services.GetRequiredService<EngramEngine>().EnsureIndexedAsync();
            (await alerts.EvaluateAsync()).Where(c => c.Firing).Should().BeEmpty();
            (await server.PostJsonAsync("/v1/admin/readonly", """{"enabled":true}""")).EnsureSuccessStatusCode();
            for (var i = 0; i < 3; i++)
            {
                (await server.PostJsonAsync("/v1/memories", $$"""{"content":"refused {{i}}"}""")).StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
            }
            // ASP.NET Core records a request's metric as it finishes, which can be just after the client has the answer.
            for (var deadline = DateTime.UtcNow.AddSeconds(10); alerts.Signals.WriteErrors < 3 && DateTime.UtcNow < deadline;)
            {
                await Task.Delay(20);
            }
            (await alerts.EvaluateAsync()).Where(c => c.Firing).Select(c => c.Name).Should().Equal(["write_errors"]);
            var message = await telegram.NextAsync();
            message.Text.Should().Contain("write_errors").And.Contain("3 writes failed");
            (await hook.NextAsync()).Body.GetProperty("alert").GetString().Should().Be("write_errors");
            // No failed write in the next interval: resolved.
            (await alerts.EvaluateAsync()).Where(c => c.Firing).Should().BeEmpty();
            (await telegram.NextAsync()).Text.Should().StartWith("✅ Resolved: write_errors");
            (await hook.NextAsync()).Event.Should().Be("alert.resolved");
        }

        // A restart keeps the record and the cooldown: the same alert 1 minute later is recorded, not sent.
        await using var again = await EngramServer.StartAsync(data.Path, o =>
        {
            o.Alerts.Enabled = true; // log and record only this time
            o.Alerts.EvaluationIntervalSeconds = 3600;
            o.Alerts.MinFreeDiskMB = 1;
            o.Memory.SampleIntervalMilliseconds = 60_000;
        }, clock);
        var restarted = again.Services.GetRequiredService<AlertService>();
        await again.Services.GetRequiredService<EngramEngine>().EnsureIndexedAsync();
        restarted.Signals.RecordWriteError();
        restarted.Signals.RecordWriteError();
        restarted.Signals.RecordWriteError();
        restarted.Signals.RecordWriteError();
        restarted.Signals.RecordWriteError();
        clock.Advance(TimeSpan.FromMinutes(1));
        (await restarted.EvaluateAsync()).Where(c => c.Firing).Select(c => c.Name).Should().Equal(["write_errors"]);
        var events = (await again.Client.GetFromJsonAsync<JsonElement>("/v1/admin/alerts?limit=3")).GetProperty("events").EnumerateArray().ToList();
        events.Should().HaveCount(3);
        events[0].GetProperty("state").GetString().Should().Be("firing");
        events[0].GetProperty("notified").GetBoolean().Should().BeFalse("the message 1 minute before the restart started the cooldown");
        events[1].GetProperty("state").GetString().Should().Be("resolved");
        (await again.Client.GetAsync("/v1/admin/alerts?limit=0")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        telegram.Count.Should().Be(2);
    }

    [Fact]
    public void Settings_are_checked()
    {
        var options = new AlertOptions { TelegramChatIds = "42,abc", WebhookUrl = "ftp://x", CooldownMinutes = -1 };
        options.Validate(telegramEnabled: false).Should().HaveCountGreaterThanOrEqualTo(4);
        new AlertOptions { TelegramChatIds = "42", WebhookUrl = "https://hooks.example/alerts", WebhookSecret = "0123456789abcdef" }
            .Validate(telegramEnabled: true).Should().BeEmpty();
        new AlertOptions { WebhookUrl = "https://hooks.example/alerts", WebhookSecret = "short" }.Validate(true).Should().ContainSingle();
    }
}
