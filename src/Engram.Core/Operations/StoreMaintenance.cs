using System.Diagnostics;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Core.Storage.Sqlite;

namespace Engram.Core.Operations;

/// <summary>
/// <c>engram maintenance</c>: SQLite's own upkeep (integrity check, VACUUM, ANALYZE, REINDEX) on a
/// connection of its own, and pruning through the memory service (so history, change log and
/// indexes stay consistent). Each may run beside a server on the same folder: SQLite serialises
/// them with the server's writes (see docs/ARCHITECTURE.md, "Maintenance", for what that costs).
/// </summary>
public static class StoreMaintenance
{
    /// <summary>Problems reported by <see cref="CheckIntegrity"/>, at most.</summary>
    private const int MaxProblems = 50;

    /// <summary>
    /// PRAGMA integrity_check and foreign_key_check on the database, and the index snapshot's
    /// checksum and identity. Opens the file read-only and never changes it.
    /// </summary>
    public static IntegrityReport CheckIntegrity(string dataPath)
    {
        var path = Path.Combine(dataPath, SqliteMemoryStore.FileName);
        var problems = new List<string>();
        var storeId = "";
        try
        {
            using var connection = SqliteConnection.Open(path, readOnly: true, create: false);
            using (var check = connection.Prepare("PRAGMA integrity_check"))
            {
                while (check.Step() && problems.Count < MaxProblems)
                {
                    var line = check.GetText(0);
                    if (line != "ok")
                    {
                        problems.Add("integrity_check: " + line);
                    }
                }
            }
            using (var keys = connection.Prepare("PRAGMA foreign_key_check"))
            {
                while (keys.Step() && problems.Count < MaxProblems)
                {
                    problems.Add($"foreign_key_check: a row of {keys.GetText(0)} (rowid {keys.GetInt64(1)}) has no parent in {keys.GetText(2)}");
                }
            }
            storeId = connection.ScalarText("SELECT value FROM store_meta WHERE key = 'store_id'") ?? "";
        }
        catch (SqliteException ex)
        {
            // A damaged file often fails the check itself ("database disk image is malformed", "file is not a database").
            problems.Add("the database cannot be read: " + ex.Message);
        }
        var snapshotPath = Path.Combine(dataPath, IndexSnapshot.FileName);
        var snapshotProblem = IndexSnapshot.Verify(snapshotPath, storeId, out var snapshotExists);
        if (snapshotProblem is not null)
        {
            problems.Add($"index snapshot {snapshotPath}: {snapshotProblem} (engram reindex rebuilds it)");
        }
        return new IntegrityReport(problems.Count == 0, problems, snapshotExists, ["integrity_check", "foreign_key_check"]);
    }

    /// <summary>
    /// The PostgreSQL store's check (<see cref="PostgresMemoryStore.CheckIntegrityAsync"/>: change log, kept counts,
    /// amcheck when installed) and this instance's index snapshot, when <paramref name="snapshotPath"/> names one.
    /// </summary>
    public static async Task<IntegrityReport> CheckIntegrityAsync(string url, string? snapshotPath, CancellationToken ct = default)
    {
        await using var store = PostgresMemoryStore.Open(url);
        var (done, found) = await store.CheckIntegrityAsync(ct).ConfigureAwait(false);
        var problems = found.ToList();
        var snapshotExists = false;
        if (snapshotPath is not null && IndexSnapshot.Verify(snapshotPath, store.StoreId, out snapshotExists) is { } snapshotProblem)
        {
            problems.Add($"index snapshot {snapshotPath}: {snapshotProblem} (engram reindex rebuilds it)");
        }
        return new IntegrityReport(problems.Count == 0, problems, snapshotExists, done);
    }

    /// <summary>VACUUM (ANALYZE), or VACUUM FULL when <paramref name="full"/>, of the PostgreSQL store's tables; the database's size before and after.</summary>
    public static async Task<(long Before, long After)> VacuumAsync(string url, bool full, CancellationToken ct = default)
    {
        await using var store = PostgresMemoryStore.Open(url);
        return await store.VacuumAsync(full, ct).ConfigureAwait(false);
    }

    /// <summary>ANALYZE of the PostgreSQL store's tables.</summary>
    public static async Task AnalyzeAsync(string url, CancellationToken ct = default)
    {
        await using var store = PostgresMemoryStore.Open(url);
        await store.AnalyzeAsync(ct).ConfigureAwait(false);
    }

    /// <summary>REINDEX TABLE CONCURRENTLY of the PostgreSQL store's tables (writes go on meanwhile).</summary>
    public static async Task ReindexPostgresAsync(string url, CancellationToken ct = default)
    {
        await using var store = PostgresMemoryStore.Open(url);
        await store.ReindexTablesAsync(ct).ConfigureAwait(false);
    }

    /// <summary>VACUUM: rewrites the file without its free pages; returns the size before and after.</summary>
    public static (long Before, long After) Vacuum(string dataPath)
    {
        var path = Path.Combine(dataPath, SqliteMemoryStore.FileName);
        var before = FileBytes(path);
        using (var connection = SqliteConnection.Open(path, create: false))
        {
            connection.Execute("VACUUM");
            connection.Execute("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        return (before, FileBytes(path));
    }

    /// <summary>ANALYZE then PRAGMA optimize: fresh statistics for SQLite's query planner.</summary>
    public static void Analyze(string dataPath)
    {
        using var connection = SqliteConnection.Open(Path.Combine(dataPath, SqliteMemoryStore.FileName), create: false);
        connection.Execute("ANALYZE");
        connection.Execute("PRAGMA optimize");
    }

    /// <summary>SQLite's REINDEX: rebuilds every B-tree index of the database from its table.</summary>
    public static void ReindexSqlite(string dataPath)
    {
        using var connection = SqliteConnection.Open(Path.Combine(dataPath, SqliteMemoryStore.FileName), create: false);
        connection.Execute("REINDEX");
    }

    /// <summary>The database and its WAL, in bytes.</summary>
    public static long FileBytes(string databasePath) =>
        (File.Exists(databasePath) ? new FileInfo(databasePath).Length : 0) + (File.Exists(databasePath + "-wal") ? new FileInfo(databasePath + "-wal").Length : 0);

    /// <summary>
    /// Deletes the memories of <paramref name="caller"/>'s tenant that match <paramref name="filter"/>,
    /// through the memory service, a batch at a time (each batch one group commit). A cancelled prune
    /// stops between batches: what was deleted is deleted, with its history and change-log entries,
    /// and the report says how many. A dry run deletes nothing and returns the count and a sample.
    /// </summary>
    public static async Task<PruneReport> PruneAsync(IMemoryStore store, MemoryService memories, Caller caller, MemoryFilter filter, bool dryRun,
        int sampleSize = 5, IProgress<OperationProgress>? progress = null, CancellationToken ct = default)
    {
        const int Batch = 500;
        var started = Stopwatch.GetTimestamp();
        var matching = (await store.GetStatsAsync(caller, filter, ct).ConfigureAwait(false)).Total;
        var sample = (await memories.ListAsync(caller, filter, Math.Max(1, sampleSize), null, ct).ConfigureAwait(false)).Items.Take(sampleSize).ToList();
        if (dryRun)
        {
            return new PruneReport(matching, 0, sample, DryRun: true, Cancelled: false, Stopwatch.GetElapsedTime(started));
        }
        long deleted = 0;
        var cancelled = false;
        while (true)
        {
            if (ct.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }
            var ids = await store.ListIdsAsync(caller, filter, Batch, CancellationToken.None).ConfigureAwait(false);
            if (ids.Count == 0)
            {
                break;
            }
            // Queued together, the deletes share the writer's group commits; none is cancelled half-way.
            var results = await Task.WhenAll(ids.Select(async id =>
            {
                try
                {
                    await memories.DeleteAsync(caller, id, CancellationToken.None).ConfigureAwait(false);
                    return true;
                }
                catch (NotFoundException)
                {
                    return false; // gone meanwhile (another writer, the TTL sweeper)
                }
            })).ConfigureAwait(false);
            var gone = results.Count(r => r);
            deleted += gone;
            if (gone == 0)
            {
                break; // every listed memory vanished under us: nothing left that this prune can delete
            }
            progress?.Report(new OperationProgress("deleted", deleted, matching));
        }
        return new PruneReport(matching, deleted, sample, DryRun: false, cancelled, Stopwatch.GetElapsedTime(started));
    }
}

/// <summary>What the integrity check found: sound, or the problems (at most 50); and what it checked.</summary>
public sealed record IntegrityReport(bool Ok, IReadOnlyList<string> Problems, bool SnapshotChecked, IReadOnlyList<string> Checked);

/// <summary>What a prune matched and deleted (nothing in a dry run), a sample of the matching memories, and whether it was cancelled.</summary>
public sealed record PruneReport(long Matched, long Deleted, IReadOnlyList<Memory> Sample, bool DryRun, bool Cancelled, TimeSpan Elapsed);
