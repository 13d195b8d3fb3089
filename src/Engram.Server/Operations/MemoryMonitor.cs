using System.Diagnostics;
using System.Net.Http.Json;
using System.Threading.Channels;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Net;
using Engram.Core.Operations;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Operations;

/// <summary>
/// Samples the working set against the <see cref="MemoryBudget"/> (every Engram:Memory:SampleIntervalMilliseconds,
/// default 2 s). From 85 % of the budget: a warning (log line, <c>engram_memory_budget_used_ratio</c>, the optional
/// webhook, and a <c>memory_resolved</c> post when usage is back under 85 %). From 95 %: writes are shed (the <see cref="Core.Operations.WriteGate"/> answers 503) until usage is back
/// under 85 % (hysteresis, so a server near the line does not flap); reads keep working throughout.
/// </summary>
public sealed partial class MemoryMonitor : BackgroundService
{
    public const double WarnRatio = 0.85;
    public const double ShedRatio = 0.95;

    private readonly EngramEngine _engine;
    private readonly EngramServerOptions _options;
    private readonly ILogger<MemoryMonitor> _logger;
    private readonly HttpClient? _webhook;
    private readonly Channel<WebhookNote>? _notes;
    private readonly Lock _lock = new();
    private volatile MemorySample? _last;
    private bool _warning;

    public MemoryMonitor(EngramEngine engine, IOptions<EngramServerOptions> options, ILogger<MemoryMonitor> logger)
    {
        _engine = engine;
        _options = options.Value;
        _logger = logger;
        Budget = MemoryBudget.Resolve(_options.Memory.BudgetMB);
        if (_options.Memory.WarningWebhook is { Length: > 0 } hook)
        {
            _webhook = OutboundHttp.CreateClient(OutboundPolicy.For([new Uri(hook)], _options.Outbound.AllowedHosts), TimeSpan.FromSeconds(5));
            // Wait mode only so that TryWrite answers false when full (DropWrite reports true and drops silently); Notify never waits.
            _notes = Channel.CreateBounded<WebhookNote>(new BoundedChannelOptions(WebhookQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
            _ = Task.Run(() => SendNotesAsync(_webhook, hook, _notes.Reader));
        }
        OperationsGauges.Register(this);
    }

    /// <summary>The write gate this monitor sheds through (the engine's).</summary>
    public Core.Operations.WriteGate Gate => _engine.Gate;

    /// <summary>The budget in force (settable at run time, e.g. by tests; the next sample applies it).</summary>
    public MemoryBudget Budget { get; set; }

    /// <summary>The latest sample, or null before the first.</summary>
    public MemorySample? Last => _last;

    /// <summary>Takes a sample now: updates the gate, the gauges, the log and the webhook.</summary>
    public MemorySample Sample()
    {
        lock (_lock)
        {
            var workingSet = WorkingSet();
            var budget = Budget.Bytes;
            var ratio = budget > 0 ? (double)workingSet / budget : 0;
            var gate = _engine.Gate;
            var wasShedding = gate.Shedding;
            var shedding = ratio >= ShedRatio || (wasShedding && ratio >= WarnRatio);
            var warning = ratio >= WarnRatio;
            var text = $"working set {HealthChecks.Mb(workingSet)} of {HealthChecks.Mb(budget)}, {ratio:P0}";
            gate.Shed(shedding ? text : null);
            if (shedding && !wasShedding)
            {
                LogShedding(_logger, HealthChecks.Mb(workingSet), HealthChecks.Mb(budget), ratio);
                Notify("memory_shedding", workingSet, budget, ratio);
            }
            else if (!shedding && wasShedding)
            {
                LogRecovered(_logger, HealthChecks.Mb(workingSet), HealthChecks.Mb(budget), ratio);
                Notify("memory_recovered", workingSet, budget, ratio);
            }
            else if (warning && !_warning && !shedding)
            {
                LogWarning(_logger, HealthChecks.Mb(workingSet), HealthChecks.Mb(budget), ratio);
                Notify("memory_warning", workingSet, budget, ratio);
            }
            else if (!warning && _warning && !wasShedding)
            {
                LogResolved(_logger, HealthChecks.Mb(workingSet), HealthChecks.Mb(budget), ratio);
                Notify("memory_resolved", workingSet, budget, ratio);
            }
            _warning = warning;
            var sample = new MemorySample(DateTimeOffset.UtcNow, workingSet, budget, Math.Round(ratio, 4), warning, shedding);
            _last = sample;
            return sample;
        }
    }

    /// <summary>The process's working set (resident memory), read fresh.</summary>
    public static long WorkingSet()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Sample();
        var checks = new HealthChecks(_engine, _options, this);
        var tick = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(_options.Memory.SampleIntervalMilliseconds));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Sample();
                if (++tick % 5 == 0)
                {
                    // Keeps engram_health_ready and engram_disk_free_bytes fresh when nothing probes.
                    await checks.RunAsync(stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Notes waiting for the webhook, at most; beyond it new ones are dropped and counted (<c>webhook_queue</c>).</summary>
    public const int WebhookQueueCapacity = 16;

    /// <summary>Notes waiting to be posted to the webhook (at most <see cref="WebhookQueueCapacity"/>).</summary>
    public int WebhookPending => _notes?.Reader.Count ?? 0;

    /// <summary>
    /// Queues a note for the webhook. One sender posts them in order (a receiver sees warning before resolved), and
    /// the queue is bounded: a webhook that hangs costs at most <see cref="WebhookQueueCapacity"/> small notes, not a
    /// task per sample. Dropping, not waiting: <see cref="Sample"/> holds the monitor's lock and must not block.
    /// </summary>
    private void Notify(string kind, long workingSet, long budget, double ratio)
    {
        if (_notes is null)
        {
            return;
        }
        var note = new WebhookNote(kind, workingSet, budget, Math.Round(ratio, 4), DateTimeOffset.UtcNow);
        if (!_notes.Writer.TryWrite(note))
        {
            BoundOverflow.Count("webhook_queue");
            LogWebhookFailed(_logger, $"{WebhookQueueCapacity} notes are waiting already; '{kind}' dropped");
        }
    }

    private async Task SendNotesAsync(HttpClient client, string url, ChannelReader<WebhookNote> notes)
    {
        while (await notes.WaitToReadAsync().ConfigureAwait(false))
        {
            while (notes.TryRead(out var note))
            {
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    using var response = await client.PostAsJsonAsync(url, note, EngramJson.Options, timeout.Token).ConfigureAwait(false);
                    if (!response.IsSuccessStatusCode)
                    {
                        LogWebhookFailed(_logger, $"answered {(int)response.StatusCode}");
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or OutboundRefusedException or ObjectDisposedException)
                {
                    LogWebhookFailed(_logger, ex.Message);
                }
            }
        }
    }

    public override void Dispose()
    {
        OperationsGauges.Unregister(this);
        _notes?.Writer.TryComplete();
        _webhook?.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 1400, Level = LogLevel.Warning, Message = "memory: working set {WorkingSet} is above 85 % of the {Budget} budget ({Ratio:P0}); see GET /v1/admin/memory")]
    private static partial void LogWarning(ILogger logger, string workingSet, string budget, double ratio);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Error, Message = "memory: working set {WorkingSet} is above 95 % of the {Budget} budget ({Ratio:P0}); writes get 503 until it is back under 85 %")]
    private static partial void LogShedding(ILogger logger, string workingSet, string budget, double ratio);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Information, Message = "memory: working set {WorkingSet} is back under 85 % of the {Budget} budget ({Ratio:P0}); writes accepted again")]
    private static partial void LogRecovered(ILogger logger, string workingSet, string budget, double ratio);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Information, Message = "memory: working set {WorkingSet} is back under 85 % of the {Budget} budget ({Ratio:P0})")]
    private static partial void LogResolved(ILogger logger, string workingSet, string budget, double ratio);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Warning, Message = "memory: the warning webhook failed: {Reason}")]
    private static partial void LogWebhookFailed(ILogger logger, string reason);
}

/// <summary>
/// The JSON the warning webhook receives: <c>event</c> is <c>memory_warning</c> (crossed 85 %), <c>memory_resolved</c>
/// (back under 85 % without having shed), <c>memory_shedding</c> (crossed 95 %: writes refused) or
/// <c>memory_recovered</c> (back under 85 % after shedding: writes accepted). One post per crossing, not per sample.
/// </summary>
public sealed record WebhookNote(string Event, long WorkingSetBytes, long BudgetBytes, double Ratio, DateTimeOffset At);

/// <summary>One sample of the working set against the budget.</summary>
public sealed record MemorySample(DateTimeOffset At, long WorkingSetBytes, long BudgetBytes, double Ratio, bool Warning, bool Shedding);
