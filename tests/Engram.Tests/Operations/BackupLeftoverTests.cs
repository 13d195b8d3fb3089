using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Engram.Server.Operations;
using Engram.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Engram.Tests.Operations;

/// <summary>
/// The temporary files a killed backup or verification run leaves (each the size of the database): removed by a later
/// backup once a day old, and nothing else in the folder is touched.
/// </summary>
public sealed class BackupLeftoverTests
{
    private const string Backup = "engram-20260601T080000Z-scheduled.engram-backup";

    [Fact]
    public void Only_the_names_runs_give_their_temporary_files_and_only_when_a_day_old_are_removed()
    {
        using var folder = new TempDirectory();
        var now = DateTimeOffset.UtcNow;
        string[] leftovers =
        [
            $".{Backup}.0123456789ab.db.tmp", $".{Backup}.0123456789ab.db.tmp-journal", $".{Backup}.0123456789ab.gz.tmp",
            $".{Backup}.0123456789ab.tmp", $".{Backup}.fedcba987654.jsonl.tmp",
            $".engram-verify-{Guid.NewGuid():N}.db", $".engram-verify-{Guid.NewGuid():N}.db-wal", $".engram.db.restore-{Guid.NewGuid():N}.tmp",
        ];
        string[] kept =
        [
            Backup, Backup + BackupCatalog.VerifySuffix, // the backup itself, and its verification record
            ".keep", ".engram-verify-notaguid.db", $".{Backup}.0123456789AB.db.tmp", $".{Backup}.0123456789a.db.tmp", ".other.0123456789ab.db.tmp",
            ".engram.db.restore-x.tmp", ".engram.db", ".engram.db-wal",
        ];
        foreach (var name in leftovers.Concat(kept))
        {
            Write(folder.Path, name, now - TimeSpan.FromHours(25));
        }
        // A run under way, or killed less than a day ago: its files have been written lately.
        var recent = $".{Backup}.aaaaaaaaaaaa.db.tmp";
        Write(folder.Path, recent, now - TimeSpan.FromHours(23));

        BackupCatalog.RemoveLeftovers(folder.Path, now).Should().BeEquivalentTo(leftovers);
        Directory.GetFiles(folder.Path).Select(Path.GetFileName).Should().BeEquivalentTo([.. kept, recent]);
        BackupCatalog.RemoveLeftovers(folder.Path, now + TimeSpan.FromHours(2)).Should().Equal(recent);
        BackupCatalog.RemoveLeftovers(Path.Combine(folder.Path, "missing"), now).Should().BeEmpty();
    }

    [Fact]
    public async Task A_backup_of_the_server_removes_what_a_killed_run_left()
    {
        using var data = new TempDirectory();
        var store = SqliteMemoryStore.Open(data.Path);
        try
        {
            var service = new BackupService(store, Options.Create(new EngramServerOptions { DataPath = data.Path }), TimeProvider.System,
                NullLogger<BackupService>.Instance);
            Directory.CreateDirectory(service.Folder);
            var old = $".{Backup}.0123456789ab.db.tmp";
            Write(service.Folder, old, DateTimeOffset.UtcNow - TimeSpan.FromDays(2));

            var (_, name, verification) = await service.CreateAsync(BackupKinds.Manual);

            verification.Ok.Should().BeTrue();
            Directory.GetFiles(service.Folder).Select(Path.GetFileName).Should().BeEquivalentTo([name, name + BackupCatalog.VerifySuffix]);
        }
        finally
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_restore_removes_the_database_a_killed_restore_staged_a_day_ago()
    {
        using var data = new TempDirectory();
        using var target = new TempDirectory();
        var store = SqliteMemoryStore.Open(data.Path);
        await store.DisposeAsync();
        var backup = Path.Combine(data.Path, Backup);
        StoreBackup.Create(Path.Combine(data.Path, SqliteMemoryStore.FileName), backup, BackupKinds.Manual, TimeProvider.System);
        var old = $".{SqliteMemoryStore.FileName}.restore-{Guid.NewGuid():N}.tmp";
        var recent = $".{SqliteMemoryStore.FileName}.restore-{Guid.NewGuid():N}.tmp";
        Write(target.Path, old, DateTimeOffset.UtcNow - TimeSpan.FromDays(2));
        Write(target.Path, recent, DateTimeOffset.UtcNow - TimeSpan.FromHours(1)); // perhaps a restore under way: kept

        StoreBackup.Restore(backup, target.Path, force: false).Ok.Should().BeTrue();

        File.Exists(Path.Combine(target.Path, old)).Should().BeFalse();
        File.Exists(Path.Combine(target.Path, recent)).Should().BeTrue();
        File.Exists(Path.Combine(target.Path, SqliteMemoryStore.FileName)).Should().BeTrue();
    }

    private static void Write(string folder, string name, DateTimeOffset modified)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, [1, 2, 3]);
        File.SetLastWriteTimeUtc(path, modified.UtcDateTime);
    }
}
