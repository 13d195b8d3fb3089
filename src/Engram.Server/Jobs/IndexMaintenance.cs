using Engram.Core;
using Engram.Core.Search;
using Engram.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Jobs;

/// <summary>
/// Builds the indexes at start, then keeps them following the change log: at once when the store
/// notifies a commit (PostgreSQL: any instance's), else by the half-second poll (so writes by other
/// processes on the same store show up within a second either way), runs the embedding worker that fills pending
/// vectors in behind the writes, compacts the indexes under churn, drops stored vectors of a previous model, and flushes batched access counts.
/// </summary>
internal sealed partial class IndexMaintenance(EngramEngine engine, IOptions<EngramServerOptions> options, ILogger<IndexMaintenance> logger) : BackgroundService
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);
    private const int PruneChunk = 20_000;
    private static readonly TimeSpan CompactionCheck = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ListenerGrace = TimeSpan.FromSeconds(5);
    private bool _reportedUp;
    private DateTimeOffset? _reportedDownSince;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var outage = new StoreOutage(logger, "index maintenance");
        try
        {
            var report = await BuildAsync(outage, stoppingToken);
            var drain = Task.Run(() => DrainVectorsAsync(stoppingToken), stoppingToken);
            // Pending vectors (a slow or remote model, a model change, an outage) are embedded behind
            // the writes by the worker, in batches, with its own backoff while the embedder fails.
            var embedding = Task.Run(() => RunEmbeddingWorkerAsync(stoppingToken), stoppingToken);
            var compaction = Task.Run(() => CompactIndexesAsync(stoppingToken), stoppingToken);
            LogBuilt(logger, report.Source, report.Reason, report.Memories, report.AppliedSeq, report.Milliseconds);
            var snapshotEvery = TimeSpan.FromSeconds(options.Value.SnapshotIntervalSeconds);
            var nextSnapshot = DateTime.UtcNow + snapshotEvery;
            var nextPrune = DateTime.UtcNow; // other models' stored vectors go soon after a model change

            // Other instances' commits wake the follower at once (LISTEN/NOTIFY on PostgreSQL); the poll stays the fallback.
            var listening = engine.Store is IChangeNotifications notifications
                ? Task.Run(() => notifications.ListenAsync(engine.Changes, stoppingToken), stoppingToken)
                : Task.CompletedTask;
            var wake = new FollowerWake(engine.Changes, PollInterval, FollowerWake.DefaultMinGap);
            while (!stoppingToken.IsCancellationRequested)
            {
                if (await wake.WaitAsync(stoppingToken))
                {
                    try
                    {
                        // Nothing to read when this instance's searches already applied it (read-your-writes).
                        await engine.Follower.CatchUpToAsync(engine.Changes.NewestSeq, stoppingToken);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        LogFailed(logger, ex);
                    }
                    continue;
                }
                ReportListener();
                try
                {
                    await engine.Follower.CatchUpAsync(stoppingToken);
                    outage.Succeeded();
                    if (DateTime.UtcNow >= nextPrune)
                    {
                        // A full chunk means more may wait: come back on the next tick, else in a while.
                        // One instance at a time prunes (the others skip the turn), as for the sweep.
                        var pruned = 0;
                        await ExclusiveJobs.RunAsync(engine.Store, ExclusiveJobs.VectorPruning,
                            async () => pruned = await engine.PruneStoredVectorsAsync(PruneChunk, stoppingToken), stoppingToken);
                        nextPrune = DateTime.UtcNow + (pruned >= PruneChunk ? TimeSpan.Zero : snapshotEvery);
                    }
                    await engine.Access.FlushAsync(engine.Store, stoppingToken);
                    if (DateTime.UtcNow >= nextSnapshot)
                    {
                        nextSnapshot = DateTime.UtcNow + snapshotEvery;
                        await engine.SaveSnapshotAsync(ct: stoppingToken);
                    }
                }
                catch (Exception ex) when (StoreOutage.Is(ex))
                {
                    // The database is away: searches answer from the indexes meanwhile; come back when it may be back.
                    await Task.Delay(outage.Failed(ex), stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(logger, ex);
                }
            }
            await listening;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Logs when the commit listener comes up, and when it goes down (at once after it was up; after a few
    /// seconds when it never came up, so a start does not log the moment before the first connection).
    /// </summary>
    private void ReportListener()
    {
        if (engine.Store is not IChangeNotifications)
        {
            return;
        }
        var signal = engine.Changes;
        if (signal.Listening)
        {
            if (!_reportedUp)
            {
                LogListening(logger, signal.Connects);
                _reportedUp = true;
                _reportedDownSince = null;
            }
        }
        else if (signal.Down is { } down && _reportedDownSince != down.Since && (_reportedUp || DateTimeOffset.UtcNow - down.Since > ListenerGrace))
        {
            LogListenerDown(logger, down.Reason);
            _reportedDownSince = down.Since;
            _reportedUp = false;
        }
    }

    /// <summary>The initial build, started again while the store is away (an exception out of here would stop the host).</summary>
    private async Task<IndexLoadReport> BuildAsync(StoreOutage outage, CancellationToken stoppingToken)
    {
        while (true)
        {
            try
            {
                var report = await engine.EnsureIndexedAsync().WaitAsync(stoppingToken);
                outage.Succeeded();
                return report;
            }
            catch (Exception ex) when (StoreOutage.Is(ex))
            {
                await Task.Delay(outage.Failed(ex), stoppingToken);
            }
        }
    }

    /// <summary>Moves staged vectors into the HNSW graph as fast as one thread can (searches scan them exactly meanwhile).</summary>
    private async Task DrainVectorsAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (engine.Index.DrainStaged(256) == 0 && engine.Index.StagedVectors == 0)
                {
                    // Woken when a vector is staged; the bound only covers a way of staging that does not signal.
                    await engine.Index.WaitForStagedAsync(TimeSpan.FromSeconds(1), stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogFailed(logger, ex);
                await Task.Delay(1000, stoppingToken);
            }
        }
    }

    /// <summary>
    /// Reclaims removed entries (HNSW tombstones, BM25 dead postings, retired document numbers) once they pass
    /// Engram:Search:CompactionShare of an index, so churn (updates, deletes, expiring memories) does not grow the process without bound.
    /// </summary>
    private async Task CompactIndexesAsync(CancellationToken stoppingToken)
    {
        var search = options.Value.Search;
        using var timer = new PeriodicTimer(CompactionCheck);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var done = engine.Index.Compact(search.CompactionShare, search.CompactionMinimum, stoppingToken);
                    if (done.Vectors > 0 || done.Postings > 0 || done.Documents > 0)
                    {
                        LogCompacted(logger, done.Vectors, done.Postings, done.Documents);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping: a rebuild in progress was dropped, the graph in use is whole
        }
    }

    private async Task RunEmbeddingWorkerAsync(CancellationToken stoppingToken)
    {
        var outage = new StoreOutage(logger, "embedding worker");
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                await engine.RunEmbeddingWorkerAsync(stoppingToken);
            }
            catch (Exception ex) when (StoreOutage.Is(ex))
            {
                if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > StoreOutage.MaxRetry)
                {
                    outage.Succeeded(); // it worked for a while: this is a new outage
                }
                // Pending vectors wait in the index (searched lexically) until the store is back.
                await Task.Delay(outage.Failed(ex), stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(logger, ex);
                await Task.Delay(1000, stoppingToken);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // The store closes after the hosted services stop: write the last access counts while it is open.
        try
        {
            await engine.Access.FlushAsync(engine.Store, cancellationToken);
        }
        catch (Exception ex) when (StoreOutage.Is(ex))
        {
            // Stopping while the database is away: the last access counts are bookkeeping, the shutdown goes on.
            LogFailed(logger, ex);
        }
        if (engine.EnsureIndexedAsync().IsCompletedSuccessfully)
        {
            try
            {
                await engine.SaveSnapshotAsync(ct: cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                LogFailed(logger, ex); // the next start rebuilds instead
            }
        }
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "indexes ready from {Source} ({Reason}): {Count} memories up to seq {Seq} in {Ms:F0} ms")]
    private static partial void LogBuilt(ILogger logger, string source, string reason, int count, long seq, double ms);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "indexes compacted: {Vectors} HNSW tombstones, {Postings} dead BM25 postings and {Documents} retired document numbers reclaimed")]
    private static partial void LogCompacted(ILogger logger, int vectors, int postings, int documents);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "listening for commits of other instances (connection {Connects})")]
    private static partial void LogListening(ILogger logger, long connects);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "the commit listener is down ({Reason}); other instances' writes reach the indexes by the poll until it reconnects")]
    private static partial void LogListenerDown(ILogger logger, string reason);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "index maintenance failed; retrying on the next tick")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
