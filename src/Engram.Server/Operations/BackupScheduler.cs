using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Operations;

/// <summary>
/// Makes the scheduled backups (<c>Engram:Backup:Enabled</c>, <c>:Schedule</c>): waits until the next one is due
/// (<see cref="BackupService.NextDue"/>), makes it (which verifies it and applies retention), and starts over. A
/// failed backup is logged, counted in the metrics and retried a minute later. On a database several instances
/// share, a backup runs under the backup job lock (<see cref="Core.Storage.IJobLocks"/>): while another instance
/// makes one, this one waits a minute and looks again.
/// </summary>
internal sealed partial class BackupScheduler(BackupService backups, TimeProvider clock, ILogger<BackupScheduler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = backups.Options.Interval ?? TimeSpan.FromHours(1);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var wait = backups.NextDue(interval) - clock.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, clock, stoppingToken);
                }
                try
                {
                    if (!await Core.Storage.ExclusiveJobs.RunAsync(backups.Store, Core.Storage.ExclusiveJobs.Backup,
                        () => backups.CreateAsync(Core.Operations.BackupKinds.Scheduled, stoppingToken), stoppingToken))
                    {
                        await Task.Delay(BackupService.RetryDelay, clock, stoppingToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Logged and counted by the service; wait a little before the next try.
                    LogRetry(logger, ex.Message);
                    await Task.Delay(BackupService.RetryDelay, clock, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 2405, Level = LogLevel.Warning, Message = "Scheduled backup did not complete ({Reason}); retrying in a minute")]
    private static partial void LogRetry(ILogger logger, string reason);
}
