using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Net;
using Engram.Server.Operations;
using Engram.Server.Webhooks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Exceptions;

namespace Engram.Server.Alerts;

/// <summary>
/// Evaluates the alert rules (<see cref="Rules"/>) every <see cref="AlertOptions.EvaluationIntervalSeconds"/> on Engram's own
/// signals. An alert that starts firing sends one message (Telegram chats, the signed webhook, the log) unless the same
/// alert sent one less than <see cref="AlertOptions.CooldownMinutes"/> ago; when it clears, one "resolved" message
/// follows the firing one that was sent. Every event is recorded (<see cref="AlertJournal"/>, GET /v1/admin/alerts).
/// Messages leave through a bounded queue and one sender, so a slow channel never holds up evaluation.
/// </summary>
public sealed partial class AlertService : BackgroundService
{
    private const int QueueCapacity = 256;

    /// <summary>The longest the first evaluation waits for the indexes to load at start.</summary>
    public static readonly TimeSpan StartGrace = TimeSpan.FromMinutes(10);

    private readonly EngramEngine _engine;
    private readonly EngramServerOptions _server;
    private readonly AlertOptions _options;
    private readonly HealthChecks _health;
    private readonly MemoryMonitor _memory;
    private readonly Core.Llm.LlmAccess _llm;
    private readonly BackupService _backups;
    private readonly TimeProvider _clock;
    private readonly ILogger<AlertService> _logger;
    private readonly SemaphoreSlim _evaluating = new(1, 1);
    private readonly Dictionary<string, ActiveAlert> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lastNotified;
    private readonly Channel<AlertEvent> _outbox = Channel.CreateBounded<AlertEvent>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly HttpClient? _telegramHttp;
    private readonly TelegramBotClient? _telegram;
    private readonly HttpClient? _webhookHttp;
    private readonly DateTimeOffset _started;
    private Task? _sender;

    public AlertService(EngramEngine engine, IOptions<EngramServerOptions> options, HealthChecks health, MemoryMonitor memory, Core.Llm.LlmAccess llm,
        TimeProvider clock, ILogger<AlertService> logger, AlertSignals signals, BackupService backups)
    {
        _backups = backups;
        _engine = engine;
        _server = options.Value;
        _options = _server.Alerts;
        _health = health;
        _memory = memory;
        _llm = llm;
        _clock = clock;
        _logger = logger;
        Signals = signals;
        _started = clock.GetUtcNow();
        Core.Llm.LanguageModel.StartCounters(); // the llm series exist from the start, for the Prometheus twin of llm_failing
        Journal = new AlertJournal(_server.DataPath, _options.MaxRecords);
        _lastNotified = Journal.LastNotified();
        if (_options.ChatIds.Count > 0 && _server.Telegram.Enabled)
        {
            var api = new Uri(string.IsNullOrWhiteSpace(_server.Telegram.ApiBaseUrl) ? "https://api.telegram.org" : _server.Telegram.ApiBaseUrl);
            _telegramHttp = OutboundHttp.CreateClient(OutboundPolicy.For([api], _server.Outbound.AllowedHosts), TimeSpan.FromSeconds(5));
            _telegram = _server.Telegram.CreateClient(_telegramHttp);
        }
        if (_options.WebhookUrl is { Length: > 0 } hook)
        {
            _webhookHttp = OutboundHttp.CreateClient(OutboundPolicy.For([new Uri(hook)], _server.Outbound.AllowedHosts), TimeSpan.FromSeconds(5));
        }
    }

    public AlertJournal Journal { get; }

    public AlertSignals Signals { get; }

    public bool Enabled => _options.IsOn;

    /// <summary>The alerts firing now, oldest first.</summary>
    public IReadOnlyList<ActiveAlertView> Active()
    {
        lock (_active)
        {
            return [.. _active.Values.OrderBy(a => a.Since).Select(a => new ActiveAlertView(a.Name, a.Severity, a.Summary, a.Since, a.Notified))];
        }
    }

    /// <summary>Messages waiting for the sender (0 when idle).</summary>
    public int Pending => _outbox.Reader.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.IsOn)
        {
            return;
        }
        _sender = Task.Run(() => SendAllAsync(stoppingToken), CancellationToken.None);
        // A starting server is unready while its indexes load: that is no incident. Evaluation starts once they are
        // built (or failed to build, which not_ready reports), or after StartGrace at the latest.
        await ((Task)_engine.EnsureIndexedAsync()).WaitAsync(StartGrace, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (stoppingToken.IsCancellationRequested)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_options.EvaluationIntervalSeconds));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await EvaluateAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogEvaluationFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Evaluates every rule now and queues the messages of the alerts that changed; returns the conditions.</summary>
    public async Task<IReadOnlyList<AlertCondition>> EvaluateAsync(CancellationToken ct = default)
    {
        await _evaluating.WaitAsync(ct);
        try
        {
            var conditions = await Rules(ct);
            var now = _clock.GetUtcNow();
            var cooldown = TimeSpan.FromMinutes(_options.CooldownMinutes);
            foreach (var condition in conditions)
            {
                AlertEvent? change = null;
                lock (_active)
                {
                    var active = _active.GetValueOrDefault(condition.Name);
                    if (condition.Firing && active is null)
                    {
                        var notify = !_lastNotified.TryGetValue(condition.Name, out var last) || now - last >= cooldown;
                        if (notify)
                        {
                            _lastNotified[condition.Name] = now;
                        }
                        _active[condition.Name] = new ActiveAlert(condition.Name, condition.Severity, condition.Summary, now, notify);
                        change = new AlertEvent(Guid.NewGuid().ToString("N"), condition.Name, condition.Severity, AlertEvent.Firing, condition.Summary, now, notify);
                    }
                    else if (condition.Firing && active is not null && condition.Severity != active.Severity)
                    {
                        // A severity change inside one incident: a rise is sent whatever the cooldown (the operator must
                        // hear that it got worse); a fall back is recorded and logged only.
                        var rising = Rank(condition.Severity) > Rank(active.Severity);
                        active.Severity = condition.Severity;
                        active.Summary = condition.Summary;
                        if (rising)
                        {
                            active.Notified = true;
                            _lastNotified[condition.Name] = now;
                        }
                        change = new AlertEvent(Guid.NewGuid().ToString("N"), condition.Name, condition.Severity, rising ? AlertEvent.Escalated : AlertEvent.Deescalated,
                            condition.Summary, now, rising, active.Since);
                    }
                    else if (condition.Firing && active is not null)
                    {
                        active.Summary = condition.Summary;
                    }
                    else if (!condition.Firing && active is not null)
                    {
                        _active.Remove(condition.Name);
                        change = new AlertEvent(Guid.NewGuid().ToString("N"), condition.Name, active.Severity, AlertEvent.Resolved, condition.Summary, now, active.Notified, active.Since);
                    }
                }
                if (change is not null)
                {
                    Journal.Add(change);
                    if (change.Notified)
                    {
                        LogAlert(_logger, change.State, change.Alert, change.Severity, change.Summary);
                        if (!_outbox.Writer.TryWrite(change))
                        {
                            LogDropped(_logger, change.Alert);
                        }
                    }
                    else if (change.State == AlertEvent.Deescalated)
                    {
                        LogAlert(_logger, change.State, change.Alert, change.Severity, change.Summary);
                    }
                    else
                    {
                        LogSuppressed(_logger, change.State, change.Alert, change.Summary);
                    }
                }
            }
            return conditions;
        }
        finally
        {
            _evaluating.Release();
        }
    }

    /// <summary>Every rule on the current signals.</summary>
    private async Task<IReadOnlyList<AlertCondition>> Rules(CancellationToken ct)
    {
        var list = new List<AlertCondition>();
        var report = await _health.RunAsync(ct);
        var checks = report.Checks.ToDictionary(c => c.Name, StringComparer.Ordinal);

        var sample = _memory.Sample();
        var memoryText = $"working set {HealthChecks.Mb(sample.WorkingSetBytes)} of a {HealthChecks.Mb(sample.BudgetBytes)} budget ({sample.Ratio.ToString("P0", CultureInfo.InvariantCulture)})";
        list.Add(new("memory_high", sample.Ratio >= _options.MemoryCriticalRatio ? "critical" : "warning", sample.Ratio >= _options.MemoryWarningRatio,
            sample.Ratio >= _options.MemoryCriticalRatio ? memoryText + "; writes are shed (503) until it is back under 85 %" : memoryText));

        var (searches, p95, writeErrors) = Signals.TakeWindow();
        list.Add(new("write_errors", "critical", writeErrors >= _options.WriteErrors,
            $"{writeErrors} writes failed (5xx) in the last {_options.EvaluationIntervalSeconds} s (threshold {_options.WriteErrors})"));
        var p95Ms = p95 is { } s ? s * 1000 : 0;
        var p95Critical = Math.Max(_options.SearchP95Milliseconds, _options.SearchP95CriticalMilliseconds);
        list.Add(new("search_slow", searches >= 5 && p95Ms > p95Critical ? "critical" : "warning", searches >= 5 && p95Ms > _options.SearchP95Milliseconds,
            $"search p95 {p95Ms:0} ms over {searches} searches (warning above {_options.SearchP95Milliseconds} ms, critical above {p95Critical} ms)"));

        var lag = _engine.IndexLag();
        var lagging = lag.Entries > _options.IndexLag;
        var lagCritical = Math.Max(_options.IndexLag, _options.IndexLagCritical);
        list.Add(new("index_lag", lag.Entries > lagCritical ? "critical" : "warning", lagging,
            $"the indexes are {lag.Entries} changes behind the change log (warning above {_options.IndexLag}, critical above {lagCritical})"));

        var embedder = checks.GetValueOrDefault("embedder");
        var embedderFailing = embedder?.Status == HealthChecks.Fail;
        list.Add(new("embedder_failing", "critical", embedderFailing, embedder?.Detail ?? "no embedder check"));

        var llmFailing = false;
        var llmText = "no language model configured";
        if (_llm.Model is { } model)
        {
            var status = model.Status();
            llmFailing = status.LastErrorAt is { } failedAt && (status.LastSuccessAt is not { } okAt || failedAt > okAt);
            llmText = llmFailing ? $"{status.Model}: the last call failed: {status.LastError}" : $"{status.Model}: answering";
        }
        list.Add(new("llm_failing", "warning", llmFailing, llmText));

        if (_server.Backup.Enabled)
        {
            var lastOk = _backups.LastSuccessAt;
            var age = _clock.GetUtcNow() - (lastOk ?? _started);
            list.Add(new("backup_failed", "warning", _backups.LastFailed, "the last backup failed; see the server log"));
            list.Add(new("backup_stale", "warning", age.TotalHours > _options.BackupMaxAgeHours,
                lastOk is null ? $"no backup yet, {age.TotalHours:0.#} h after start" : $"the last good backup is {age.TotalHours:0.#} h old (limit {_options.BackupMaxAgeHours} h)"));
        }

        var free = HealthChecks.FreeDiskBytes(_server.DataPath);
        var diskLow = free is { } bytes && bytes < (long)_options.MinFreeDiskMB * 1024 * 1024;
        var diskCritical = Math.Min(_options.MinFreeDiskMB, _options.MinFreeDiskCriticalMB);
        list.Add(new("disk_low", free is { } fb && fb < (long)diskCritical * 1024 * 1024 ? "critical" : "warning", diskLow,
            free is { } b ? $"{HealthChecks.Mb(b)} free on the data folder's disk (warning below {_options.MinFreeDiskMB} MB, critical below {diskCritical} MB)" : "free space unknown"));

        // Not ready: the failing checks that no alert of their own reports already (one fault, one message).
        var covered = new HashSet<string>(StringComparer.Ordinal);
        if (embedderFailing)
        {
            covered.Add("embedder");
        }
        if (diskLow)
        {
            covered.Add("disk");
        }
        if (lagging)
        {
            covered.Add("index");
        }
        var failing = report.Checks.Where(c => c.Status == HealthChecks.Fail && !covered.Contains(c.Name)).ToList();
        list.Insert(0, new("not_ready", "critical", failing.Count > 0,
            failing.Count > 0 ? "not ready: " + string.Join("; ", failing.Select(c => $"{c.Name}: {c.Detail}")) : "ready"));
        return list;
    }

    private async Task SendAllAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var alert in _outbox.Reader.ReadAllAsync(stoppingToken))
            {
                await SendAsync(alert, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The Telegram text of <paramref name="alert"/>.</summary>
    public static string Text(AlertEvent alert, string instance) => alert.State switch
    {
        AlertEvent.Firing => $"🔴 Engram alert [{alert.Severity}] {alert.Alert} on {instance}\n{alert.Summary}\nsince {alert.At:yyyy-MM-dd HH:mm:ss} UTC",
        AlertEvent.Escalated => $"🔺 Escalated to [{alert.Severity}]: {alert.Alert} on {instance}\n{alert.Summary}\nfiring since {alert.FiringSince:yyyy-MM-dd HH:mm:ss} UTC",
        AlertEvent.Deescalated => $"🔻 Back to [{alert.Severity}]: {alert.Alert} on {instance}\n{alert.Summary}\nfiring since {alert.FiringSince:yyyy-MM-dd HH:mm:ss} UTC",
        _ => $"✅ Resolved: {alert.Alert} on {instance}\n{alert.Summary}\nfiring from {alert.FiringSince:yyyy-MM-dd HH:mm:ss} to {alert.At:yyyy-MM-dd HH:mm:ss} UTC",
    };

    private async Task SendAsync(AlertEvent alert, CancellationToken ct)
    {
        var instance = Environment.MachineName;
        if (_telegram is not null)
        {
            foreach (var chat in _options.ChatIds)
            {
                await WithRetriesAsync("telegram", async token => await _telegram.SendMessage(chat, Text(alert, instance), cancellationToken: token), ct);
            }
        }
        if (_webhookHttp is not null)
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(new AlertWebhookBody("alert." + alert.State, alert.Id, alert.Alert, alert.Severity, alert.Summary, alert.At,
                alert.FiringSince, instance), EngramJson.Options);
            await WithRetriesAsync("webhook", async token =>
            {
                using var request = WebhookSignature.Request(new Uri(_options.WebhookUrl!), _options.WebhookSecret!, body, "alert." + alert.State, alert.Id, DateTimeOffset.UtcNow); // wall clock: receivers compare it with theirs
                // Only the status is read: the receiver's body is never buffered.
                using var response = await _webhookHttp.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token);
                if (!response.IsSuccessStatusCode)
                {
                    throw new HttpRequestException($"the webhook answered {(int)response.StatusCode}", null, response.StatusCode);
                }
            }, ct);
        }
    }

    /// <summary>Three attempts, 1 s then 2 s apart (Telegram's retry_after when it gives one); a failure is logged, never thrown.</summary>
    private async Task WithRetriesAsync(string channel, Func<CancellationToken, Task> send, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                await send(timeout.Token);
                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or RequestException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                if (attempt >= 3)
                {
                    LogSendFailed(_logger, channel, ex.Message);
                    return;
                }
                var delay = ex is ApiRequestException { Parameters.RetryAfter: { } seconds } ? TimeSpan.FromSeconds(Math.Min(seconds, 60)) : TimeSpan.FromSeconds(attempt);
                await Task.Delay(delay, ct);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _outbox.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
        if (_sender is { } sender)
        {
            await sender.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public override void Dispose()
    {
        _telegramHttp?.Dispose();
        _webhookHttp?.Dispose();
        _evaluating.Dispose();
        base.Dispose();
    }

    private static int Rank(string severity) => severity == "critical" ? 2 : 1;

    private sealed class ActiveAlert(string name, string severity, string summary, DateTimeOffset since, bool notified)
    {
        public string Name { get; } = name;
        public string Severity { get; set; } = severity;
        public string Summary { get; set; } = summary;
        public DateTimeOffset Since { get; } = since;

        /// <summary>Whether a message about this incident went out (its firing, or an escalation): its resolution is sent then.</summary>
        public bool Notified { get; set; } = notified;
    }

    [LoggerMessage(EventId = 1900, Level = LogLevel.Warning, Message = "alert {State}: {Alert} [{Severity}] {Summary}")]
    private static partial void LogAlert(ILogger logger, string state, string alert, string severity, string summary);

    [LoggerMessage(EventId = 1901, Level = LogLevel.Information, Message = "alert {State} within its cooldown (no message sent): {Alert} {Summary}")]
    private static partial void LogSuppressed(ILogger logger, string state, string alert, string summary);

    [LoggerMessage(EventId = 1902, Level = LogLevel.Warning, Message = "alerts: sending to {Channel} failed after 3 attempts: {Reason}")]
    private static partial void LogSendFailed(ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 1903, Level = LogLevel.Warning, Message = "alerts: the message queue is full; the message of {Alert} was dropped (it is still recorded)")]
    private static partial void LogDropped(ILogger logger, string alert);

    [LoggerMessage(EventId = 1904, Level = LogLevel.Error, Message = "alerts: an evaluation failed")]
    private static partial void LogEvaluationFailed(ILogger logger, Exception exception);
}

/// <summary>One rule's result: whether it fires and what it saw.</summary>
public sealed record AlertCondition(string Name, string Severity, bool Firing, string Summary);

/// <summary>An alert firing now.</summary>
public sealed record ActiveAlertView(string Alert, string Severity, string Summary, DateTimeOffset Since, bool Notified);

/// <summary>The alert webhook's JSON: event is alert.firing or alert.resolved.</summary>
public sealed record AlertWebhookBody(string Event, string Id, string Alert, string Severity, string Summary, DateTimeOffset At, DateTimeOffset? FiringSince, string Instance);
