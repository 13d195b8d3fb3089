using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Reflection;
using Engram.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Jobs;

/// <summary>
/// Runs a reflection pass over every tenant every <see cref="ReflectionOptions.IntervalMinutes"/>: on by default only when a
/// language model is configured (reflections and merges); <see cref="ReflectionOptions.Enabled"/> = true runs it without one
/// (near-duplicates flagged only), false never. One instance at a time on a shared store (<see cref="ExclusiveJobs.Reflection"/>);
/// paused in read-only mode. A failed run (the model away or answering malformed JSON) writes nothing and is logged with its
/// reason; the next tick tries again from the same watermarks.
/// </summary>
internal sealed partial class ReflectionScheduler(ReflectionService reflections, EngramEngine engine, IOptions<EngramServerOptions> options, TimeProvider clock,
    ILogger<ReflectionScheduler> logger) : BackgroundService
{
    /// <summary>Whether the schedule runs for these settings and this model.</summary>
    internal static bool IsOn(ReflectionOptions settings, LlmAccess llm) => settings.Enabled ?? llm.IsConfigured;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value.Reflect;
        if (!IsOn(settings, reflections.Llm))
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(settings.IntervalMinutes), clock);
        var outage = new StoreOutage(logger, "reflections");
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (engine.Gate.ReadOnly)
                {
                    continue;
                }
                try
                {
                    ReflectionReport? report = null;
                    var ran = await ExclusiveJobs.RunAsync(engine.Store, ExclusiveJobs.Reflection, async () =>
                        report = await reflections.RunAsync(Caller.System("reflect"), new ReflectRequest { DuplicatesOnly = !reflections.Llm.IsConfigured },
                            allTenants: true, stoppingToken), stoppingToken);
                    if (report is { ScopesChanged: > 0 })
                    {
                        LogRan(logger, report.ScopesChanged, report.ReflectionsWritten, report.DuplicatesFlagged, report.DuplicatesMerged);
                    }
                    else if (!ran)
                    {
                        LogSkipped(logger);
                    }
                    outage.Succeeded();
                }
                catch (Exception ex) when (StoreOutage.Is(ex))
                {
                    outage.Failed(ex);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(logger, ex.Message, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 2600, Level = LogLevel.Information,
        Message = "Reflections: {Scopes} changed scopes, {Reflections} reflections written, {Flagged} duplicates flagged, {Merged} merged")]
    private static partial void LogRan(ILogger logger, int scopes, int reflections, int flagged, int merged);

    [LoggerMessage(EventId = 2601, Level = LogLevel.Debug, Message = "Reflections skipped: another instance on the database is running them")]
    private static partial void LogSkipped(ILogger logger);

    [LoggerMessage(EventId = 2602, Level = LogLevel.Warning, Message = "Reflection run failed, nothing written; retrying on the next tick: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason, Exception exception);
}
