using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Engram.Server.Operations;
using Engram.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Engram.Tests.Operations;

/// <summary>The server's backup job on a clock that jumps to each timer's due time: first backup after the start delay, then one an hour, retention applied.</summary>
public sealed class BackupSchedulerTests
{
    private static readonly DateTimeOffset Start = new(2026, 6, 1, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Makes_a_backup_every_interval_and_keeps_what_retention_keeps()
    {
        using var data = new TempDirectory();
        var store = SqliteMemoryStore.Open(data.Path);
        try
        {
            var options = new EngramServerOptions { DataPath = data.Path };
            options.Backup.Hourly = 3;
            options.Backup.Daily = 0;
            options.Backup.Weekly = 0;
            options.Backup.Monthly = 0;
            var clock = new JumpingClock(Start);
            var service = new BackupService(store, Options.Create(options), clock, NullLogger<BackupService>.Instance);
            var scheduler = new BackupScheduler(service, clock, NullLogger<BackupScheduler>.Instance);

            await scheduler.StartAsync(CancellationToken.None);
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (clock.GetUtcNow() < Start + BackupService.FirstDelay + TimeSpan.FromHours(6) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
            await scheduler.StopAsync(CancellationToken.None);

            // The clock jumps at once, so the stop can land while the newest backup is being verified: it is then
            // left unverified and retention runs after the next one. Retention is checked on the verified ones.
            var all = service.List();
            all.Where(e => e.Verified is null).Should().HaveCountLessThanOrEqualTo(1).And.NotContain(e => e.CreatedAt != all.Max(a => a.CreatedAt));
            var kept = all.Where(e => e.Verified is not null).ToList();
            kept.Should().HaveCount(3, "retention keeps the last 3 hourly backups");
            kept.Should().OnlyContain(e => e.Kind == BackupKinds.Scheduled && e.Verified == "ok");
            var times = kept.Select(e => e.CreatedAt).ToList();
            times.Zip(times.Skip(1), (newer, older) => newer - older).Should().AllBeEquivalentTo(TimeSpan.FromHours(1));
            ((times[0] - (Start + BackupService.FirstDelay)).Ticks % TimeSpan.TicksPerHour).Should().Be(0, "the first came after the start delay, the rest an hour apart");
            Directory.GetFiles(service.Folder, ".*").Should().BeEmpty("no temporary files are left");
        }
        finally
        {
            await store.DisposeAsync();
        }
    }

    /// <summary>Every timer fires at once (a millisecond later, on the thread pool) and moves "now" to its due time.</summary>
    private sealed class JumpingClock(DateTimeOffset start) : TimeProvider
    {
        private long _ticks = start.UtcTicks;

        public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new Jump(this, callback, state, dueTime);

        private sealed class Jump : ITimer
        {
            private readonly Timer _timer;

            public Jump(JumpingClock clock, TimerCallback callback, object? state, TimeSpan dueTime)
            {
                _timer = new Timer(_ =>
                {
                    Interlocked.Add(ref clock._ticks, dueTime.Ticks);
                    callback(state);
                }, null, dueTime == Timeout.InfiniteTimeSpan ? Timeout.Infinite : 1, Timeout.Infinite);
            }

            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose() => _timer.Dispose();

            public ValueTask DisposeAsync() => _timer.DisposeAsync();
        }
    }
}
