using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using Engram.Core.Common;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Core.Operations;

/// <summary>
/// Backups of a SQLite store: <see cref="Create"/> (an online snapshot while writes go on), <see cref="Verify"/>
/// (checksums, SQLite's integrity check, manifest against database) and <see cref="Restore"/> (verify, then write
/// atomically). The index snapshot (engram.index) is not in a backup: the indexes are rebuilt from the store.
/// </summary>
public static class StoreBackup
{
    public const string Compression = "gzip";

    /// <summary>This build's version, as manifests record it.</summary>
    public static readonly string EngramVersion =
        typeof(StoreBackup).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>
    /// Backs up the database <paramref name="databasePath"/> (engram.db of a store, live or not) into the new file
    /// <paramref name="outFile"/>, with owner-only permissions. Temporary files go next to <paramref name="outFile"/>;
    /// the backup appears under its name only when complete (written, synced, renamed).
    /// </summary>
    public static BackupManifest Create(string databasePath, string outFile, string kind, TimeProvider clock,
        IProgress<(long Done, long Total)>? progress = null, CancellationToken ct = default)
    {
        if (!File.Exists(databasePath))
        {
            throw new StoreException($"no Engram database at '{databasePath}'");
        }
        (outFile, var temporary) = BackupFile.PrepareNew(outFile);
        var copy = temporary + ".db.tmp";
        var payload = temporary + ".gz.tmp";
        var partial = temporary + ".tmp";
        try
        {
            // Relaxed SETs a killed server acknowledged from its key-value journal are in no table until a store opens on the
            // file: a backup of the crashed store copied the database without them.
            SqliteMemoryStore.ApplyOrphanedKvJournal(databasePath);
            var createdAt = clock.GetUtcNow();
            CreatePrivateEmpty(copy);
            SqliteBackup.Copy(databasePath, copy, progress, ct);
            var facts = SqliteBackup.ReadFacts(copy);
            var databaseBytes = new FileInfo(copy).Length;
            var databaseSha = BackupFile.Sha256Of(copy);
            ct.ThrowIfCancellationRequested();
            using (var input = new FileStream(copy, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            using (var output = BackupFile.CreatePrivate(payload))
            {
                using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
                {
                    input.CopyTo(gzip, 1 << 16);
                }
            }
            var manifest = new BackupManifest(BackupFile.FormatVersion, EngramVersion, facts.SchemaVersion, facts.LastSeq, facts.StoreId,
                facts.Counts, createdAt, kind, Compression, databaseBytes, databaseSha, new FileInfo(payload).Length, BackupFile.Sha256Of(payload));
            ct.ThrowIfCancellationRequested();
            using (var output = BackupFile.CreatePrivate(partial))
            {
                BackupFile.WriteHead(output, manifest);
                using (var input = new FileStream(payload, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
                {
                    input.CopyTo(output, 1 << 16);
                }
                output.Flush(flushToDisk: true);
            }
            File.Move(partial, outFile, overwrite: false);
            return manifest;
        }
        finally
        {
            DeleteQuietly(copy, copy + "-journal", copy + "-wal", copy + "-shm", payload, partial);
        }
    }

    /// <summary>
    /// Checks the backup at <paramref name="file"/>: its head, the payload's length and SHA-256, that it decompresses
    /// to a database of the recorded length and SHA-256, SQLite's integrity check on that database, and that the
    /// database's schema version, last sequence, store id and counts are the manifest's. The database is decompressed
    /// to <paramref name="keepDatabaseAt"/> when given (kept only when sound), else to a temporary file beside the backup.
    /// </summary>
    public static BackupVerification Verify(string file, string? keepDatabaseAt = null, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        var problems = new List<string>();
        BackupManifest? manifest = null;
        var database = keepDatabaseAt ?? ScratchDatabase(file);
        var keep = false;
        try
        {
            if (!File.Exists(file))
            {
                throw new BackupFormatException($"no file at '{file}'");
            }
            using (var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            {
                manifest = BackupFile.ReadHead(input);
                var payloadStart = input.Position;
                var payloadBytes = input.Length - payloadStart;
                if (payloadBytes != manifest.PayloadBytes)
                {
                    problems.Add(payloadBytes < manifest.PayloadBytes
                        ? $"the file is truncated: the payload has {payloadBytes} bytes, the manifest says {manifest.PayloadBytes}"
                        : $"the payload has {payloadBytes} bytes, {payloadBytes - manifest.PayloadBytes} more than the manifest says");
                    return Result();
                }
                var payloadSha = BackupFile.Hex(System.Security.Cryptography.SHA256.HashData(input));
                if (payloadSha != manifest.PayloadSha256)
                {
                    problems.Add($"the payload's SHA-256 is {payloadSha}, the manifest says {manifest.PayloadSha256}: the file is damaged");
                    return Result();
                }
                ct.ThrowIfCancellationRequested();
                input.Position = payloadStart;
                if (manifest.Content == BackupContents.Export)
                {
                    LogicalBackup.VerifyPayload(input, manifest, problems, ct);
                    return Result();
                }
                using var output = BackupFile.CreatePrivate(database, FileMode.Create);
                try
                {
                    using var gzip = new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
                    gzip.CopyTo(output, 1 << 16);
                }
                catch (InvalidDataException ex)
                {
                    problems.Add($"the payload does not decompress: {ex.Message}");
                    return Result();
                }
                output.Flush(flushToDisk: keepDatabaseAt is not null);
            }
            var databaseBytes = new FileInfo(database).Length;
            if (databaseBytes != manifest.DatabaseBytes)
            {
                problems.Add($"the database has {databaseBytes} bytes, the manifest says {manifest.DatabaseBytes}");
            }
            var databaseSha = BackupFile.Sha256Of(database);
            if (databaseSha != manifest.DatabaseSha256)
            {
                problems.Add($"the database's SHA-256 is {databaseSha}, the manifest says {manifest.DatabaseSha256}");
            }
            if (problems.Count > 0)
            {
                return Result();
            }
            ct.ThrowIfCancellationRequested();
            var integrity = SqliteBackup.IntegrityCheck(database);
            if (integrity is not ["ok"])
            {
                problems.Add("SQLite's integrity check failed: " + string.Join("; ", integrity));
                return Result();
            }
            var facts = SqliteBackup.ReadFacts(database);
            if (facts.SchemaVersion != manifest.SchemaVersion)
            {
                problems.Add($"the database has schema version {facts.SchemaVersion}, the manifest says {manifest.SchemaVersion}");
            }
            if (facts.LastSeq != manifest.LastSeq)
            {
                problems.Add($"the database's last sequence number is {facts.LastSeq}, the manifest says {manifest.LastSeq}");
            }
            if (facts.StoreId != manifest.StoreId)
            {
                problems.Add($"the database's store id is {facts.StoreId}, the manifest says {manifest.StoreId}");
            }
            foreach (var name in facts.Counts.Keys.Union(manifest.Counts.Keys).Order(StringComparer.Ordinal))
            {
                var actual = facts.Counts.GetValueOrDefault(name, -1);
                var expected = manifest.Counts.GetValueOrDefault(name, -1);
                if (actual != expected)
                {
                    problems.Add($"the database has {Count(actual)} {name}, the manifest says {Count(expected)}");
                }
            }
            keep = problems.Count == 0 && keepDatabaseAt is not null;
            return Result();
        }
        catch (BackupFormatException ex)
        {
            problems.Add(ex.Message);
            return Result();
        }
        catch (SqliteException ex)
        {
            problems.Add($"the database does not open: {ex.Message}");
            return Result();
        }
        finally
        {
            if (!keep)
            {
                DeleteQuietly(database, database + "-journal", database + "-wal", database + "-shm");
            }
        }

        BackupVerification Result() => new(problems.Count == 0, manifest, problems, Stopwatch.GetElapsedTime(started).TotalMilliseconds);

        static string Count(long n) => n < 0 ? "no table of" : n.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Restores the backup <paramref name="file"/> as the store in <paramref name="dataDirectory"/>: refuses a folder
    /// holding a store unless <paramref name="force"/>; verifies the backup (nothing is touched when it is unsound);
    /// writes the database to a temporary file, syncs it and renames it into place; then opens the store once
    /// (migrating a backup of an older schema, folding key-value history). An old WAL, key-value journal and index snapshot go first:
    /// they belong to the replaced database. The indexes are rebuilt at the next start (or <c>engram reindex</c>).
    /// The caller makes sure no server runs on the folder.
    /// </summary>
    public static BackupVerification Restore(string file, string dataDirectory, bool force, CancellationToken ct = default)
    {
        var folder = Path.GetFullPath(dataDirectory);
        var target = Path.Combine(folder, SqliteMemoryStore.FileName);
        if (!force && (File.Exists(target) || File.Exists(target + "-wal")))
        {
            throw new RestoreRefusedException($"'{folder}' holds an Engram store already; restore into a new folder, or pass --force to replace it");
        }
        Directory.CreateDirectory(folder);
        BackupCatalog.RemoveLeftovers(folder, DateTimeOffset.UtcNow); // a killed restore's staged database, a day old or more
        var staged = Path.Combine(folder, $".{SqliteMemoryStore.FileName}.restore-{Guid.NewGuid():N}.tmp");
        var verification = Verify(file, staged, ct);
        if (!verification.Ok)
        {
            return verification;
        }
        try
        {
            // The key-value journal goes too: a server killed on the replaced store leaves its relaxed SETs there, numbered
            // above the backup's applied mark, and the open below would replay them into the restored database.
            DeleteQuietly(target + "-wal", target + "-shm", target + "-journal", target + SqliteKvJournal.Suffix,
                Path.Combine(folder, Search.IndexSnapshot.FileName));
            File.Move(staged, target, overwrite: true);
            DurableFile.SyncFolder(folder);
        }
        finally
        {
            DeleteQuietly(staged);
        }
        // Opens as the server would: migrations of an older backup, the key-value fold; proves the store opens.
        SqliteMemoryStore.Open(folder).DisposeAsync().AsTask().GetAwaiter().GetResult();
        return verification;
    }

    /// <summary>
    /// Where a verification decompresses to: beside the backup (the backup disk has room for a database; /tmp may be
    /// a small tmpfs), else the temporary folder when the backup's folder is not writable.
    /// </summary>
    private static string ScratchDatabase(string file)
    {
        var name = $".engram-verify-{Guid.NewGuid():N}.db";
        var beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, name);
        try
        {
            using (BackupFile.CreatePrivate(beside))
            {
            }
            return beside;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Path.Combine(Path.GetTempPath(), name);
        }
    }

    private static void CreatePrivateEmpty(string path)
    {
        using var _ = BackupFile.CreatePrivate(path);
    }

    internal static void DeleteQuietly(params ReadOnlySpan<string> paths)
    {
        foreach (var path in paths)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Left behind (as a killed run's are): the backup service removes them a day later (BackupCatalog.RemoveLeftovers).
            }
        }
    }
}

/// <summary>The outcome of <see cref="StoreBackup.Verify"/>: sound or not, the manifest when it could be read, and every problem found.</summary>
public sealed record BackupVerification(bool Ok, BackupManifest? Manifest, IReadOnlyList<string> Problems, double Milliseconds);

/// <summary>A restore that would overwrite a store without --force.</summary>
public sealed class RestoreRefusedException(string message) : Exception(message);
