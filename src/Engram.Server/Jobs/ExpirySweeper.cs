using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Jobs;

/// <summary>
/// Deletes memories and key-value entries past their <c>expires_at</c> every <see cref="EngramServerOptions.SweepIntervalSeconds"/>.
/// Reads already hide expired records; the sweeper reclaims their space and records "expired" in history.
/// It also prunes key-value history older than <see cref="KvOptions.HistoryRetentionDays"/>, continuing
/// where the last tick stopped and starting over after a complete pass (a live key's newest entry is
/// kept while it is the newest, and becomes prunable once the key changes again). Paused in read-only mode.
/// On a store several instances share (PostgreSQL), a pass runs only under the sweeper's job lock
/// (<see cref="IJobLocks"/>): one instance sweeps, the others skip that tick.
/// </summary>
internal sealed partial class ExpirySweeper(IMemoryStore store, IKeyValueStore keyValue, IOptions<EngramServerOptions> options, TimeProvider clock,
    ILogger<ExpirySweeper> logger, Core.EngramEngine engine)
    : BackgroundService
{
    private const int MaxPerRun = 100_000;
    private long _historyPosition;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SweepIntervalSeconds), clock);
        var outage = new StoreOutage(logger, "TTL sweeper");
        try
        {
            do
            {
                if (engine.Gate.ReadOnly)
                {
                    continue; // read-only: the store's content does not change, expiry included (reads hide expired records meanwhile)
                }
                try
                {
                    // One instance sweeps at a time on a shared database (the others skip this tick).
                    if (!await ExclusiveJobs.RunAsync(store, ExclusiveJobs.Sweeper, () => SweepAsync(stoppingToken), stoppingToken))
                    {
                        LogSkipped(logger);
                    }
                    outage.Succeeded();
                }
                catch (Exception ex) when (StoreOutage.Is(ex))
                {
                    // The database is away: logged once, swept on the first tick after it is back (its interval is the backoff).
                    outage.Failed(ex);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // A failed sweep is retried on the next tick; expired memories stay hidden meanwhile.
                    LogSweepFailed(logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task SweepAsync(CancellationToken stoppingToken)
    {
        var deleted = await store.DeleteExpiredAsync(MaxPerRun, stoppingToken);
        if (deleted > 0)
        {
            LogSwept(logger, deleted);
        }
        var keys = await keyValue.DeleteExpiredKvAsync(MaxPerRun, stoppingToken);
        if (keys > 0)
        {
            LogSweptKeys(logger, keys);
        }
        if (options.Value.KeyValue.HistoryRetentionDays > 0)
        {
            var before = clock.GetUtcNow() - TimeSpan.FromDays(options.Value.KeyValue.HistoryRetentionDays);
            var pruned = await keyValue.PruneKvHistoryAsync(before.ToUnixTimeMilliseconds(), _historyPosition, MaxPerRun, stoppingToken);
            _historyPosition = pruned.More ? pruned.LastHistoryId : 0;
            if (pruned.Deleted > 0)
            {
                LogPrunedHistory(logger, pruned.Deleted);
            }
        }
    }

    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "TTL sweeper deleted {Count} expired memories")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "TTL sweeper deleted {Count} expired key-value entries")]
    private static partial void LogSweptKeys(ILogger logger, int count);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "History retention pruned {Count} key-value history entries")]
    private static partial void LogPrunedHistory(ILogger logger, int count);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Debug, Message = "TTL sweep skipped: another instance on the database is sweeping")]
    private static partial void LogSkipped(ILogger logger);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "TTL sweep failed; retrying on the next tick")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
