using Engram.Core.Operations;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>The retention rule (<see cref="BackupRetention"/>): a pure function over names and times, then one real folder.</summary>
public sealed class BackupRetentionTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 30, 0, TimeSpan.Zero);

    [Fact]
    public void A_year_of_hourly_backups_keeps_24_hourly_7_daily_4_weekly_12_monthly()
    {
        // The schedule as the server runs it: a backup every hour, retention applied after each.
        var clock = new ManualClock(Start);
        var kept = new List<(string Name, DateTimeOffset CreatedAt)>();
        var policy = new RetentionPolicy();
        for (var hour = 0; hour < 400 * 24; hour++)
        {
            kept.Add(($"b{hour:D5}", clock.GetUtcNow()));
            var expired = BackupRetention.Expired(kept, policy).ToHashSet();
            kept.RemoveAll(b => expired.Contains(b.Name));
            clock.Advance(TimeSpan.FromHours(1));
        }
        var now = kept.Max(b => b.CreatedAt);
        var ages = kept.Select(b => now - b.CreatedAt).OrderBy(a => a).ToList();
        // 24 hourly (the last 24 hours), the newest of each of 7 days (the first is today's, already kept), 4 weeks, 12 months.
        ages.Count(a => a < TimeSpan.FromHours(24)).Should().Be(24);
        kept.Select(b => b.CreatedAt.Date).Distinct().Count().Should().BeGreaterThanOrEqualTo(7);
        kept.Select(b => (b.CreatedAt.Year, b.CreatedAt.Month)).Distinct().Count().Should().Be(12, "one per month for twelve months");
        ages.Max().Should().BeLessThan(TimeSpan.FromDays(366)).And.BeGreaterThan(TimeSpan.FromDays(300));
        kept.Count.Should().BeLessThanOrEqualTo(24 + 7 + 4 + 12);
        // Applying the rule to what it kept deletes nothing more: it is stable.
        BackupRetention.Expired(kept, policy).Should().BeEmpty();
    }

    [Fact]
    public void Keeps_the_newest_of_each_period_and_always_the_newest_backup()
    {
        var backups = new List<(string, DateTimeOffset)>
        {
            ("h1-early", Start),
            ("h1-late", Start.AddMinutes(20)),
            ("h2", Start.AddHours(1)),
            ("h3", Start.AddHours(2)),
        };
        BackupRetention.Keep(backups, new RetentionPolicy(Hourly: 2, Daily: 0, Weekly: 0, Monthly: 0)).Should().BeEquivalentTo("h3", "h2");
        BackupRetention.Keep(backups, new RetentionPolicy(Hourly: 5, Daily: 0, Weekly: 0, Monthly: 0)).Should().BeEquivalentTo("h3", "h2", "h1-late");
        BackupRetention.Keep(backups, new RetentionPolicy(0, 0, 0, 0)).Should().BeEquivalentTo(["h3"], "the newest backup is never deleted");
        BackupRetention.Keep([], new RetentionPolicy()).Should().BeEmpty();
    }

    [Fact]
    public void Periods_count_backups_that_exist_not_wall_time()
    {
        // A server off for two months: its old daily backups are still the last 7 days that have one.
        var backups = Enumerable.Range(0, 10).Select(d => ($"d{d}", Start.AddDays(d))).ToList();
        backups.Add(("back", Start.AddDays(70)));
        var keep = BackupRetention.Keep(backups, new RetentionPolicy(Hourly: 0, Daily: 7, Weekly: 0, Monthly: 0));
        keep.Should().BeEquivalentTo("back", "d9", "d8", "d7", "d6", "d5", "d4");
    }

    [Fact]
    public async Task Prune_deletes_expired_scheduled_backups_and_their_records_in_a_real_folder_but_never_manual_ones()
    {
        using var data = new TempDirectory();
        using var backups = new TempDirectory();
        var store = Core.Storage.Sqlite.SqliteMemoryStore.Open(data.Path);
        await store.DisposeAsync();
        var database = Path.Combine(data.Path, Core.Storage.Sqlite.SqliteMemoryStore.FileName);
        var clock = new ManualClock(Start);
        var names = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var name = BackupCatalog.NewName(backups.Path, clock.GetUtcNow(), BackupKinds.Scheduled);
            StoreBackup.Create(database, Path.Combine(backups.Path, name), BackupKinds.Scheduled, clock);
            BackupCatalog.WriteVerification(Path.Combine(backups.Path, name), new BackupVerification(true, null, [], 1), clock.GetUtcNow());
            names.Add(name);
            clock.Advance(TimeSpan.FromHours(1));
        }
        var manual = BackupCatalog.NewName(backups.Path, Start, BackupKinds.Manual);
        StoreBackup.Create(database, Path.Combine(backups.Path, manual), BackupKinds.Manual, new ManualClock(Start));

        var deleted = BackupCatalog.Prune(backups.Path, new RetentionPolicy(Hourly: 2, Daily: 0, Weekly: 0, Monthly: 0));

        deleted.Should().Equal(names[0], names[1], names[2]);
        Directory.GetFiles(backups.Path).Select(Path.GetFileName).Should().BeEquivalentTo(
            names[3], names[3] + BackupCatalog.VerifySuffix, names[4], names[4] + BackupCatalog.VerifySuffix, manual);
        BackupCatalog.List(backups.Path).Select(e => (e.Name, e.Kind, e.Verified)).Should().Equal(
            (names[4], "scheduled", "ok"), (names[3], "scheduled", "ok"), (manual, "manual", null));
    }
}
