using System.Globalization;
using System.Text.Json;

namespace Engram.Core.Operations;

/// <summary>A backup in a backup folder, as listed: name, time, size, kind, last sequence and the last verification.</summary>
public sealed record BackupEntry(string Name, DateTimeOffset CreatedAt, long SizeBytes, string Kind, long LastSeq, int SchemaVersion,
    string? Verified, DateTimeOffset? VerifiedAt, string? Problem);

/// <summary>The result of a verification, kept beside the backup as <c>NAME.verify.json</c> so listings show it.</summary>
public sealed record VerificationRecord(bool Ok, DateTimeOffset At, IReadOnlyList<string> Problems);

/// <summary>
/// A backup folder: the names the server gives backups (<c>engram-20261203T042800Z-scheduled.engram-backup</c>),
/// listing with each file's manifest, the verification records, and removal of expired scheduled backups.
/// </summary>
public static class BackupCatalog
{
    public const string Prefix = "engram-";
    public const string VerifySuffix = ".verify.json";

    /// <summary>A new file name in <paramref name="folder"/> for a backup made at <paramref name="at"/>.</summary>
    public static string NewName(string folder, DateTimeOffset at, string kind)
    {
        var stem = $"{Prefix}{at.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}-{kind}";
        var name = stem + BackupFile.Extension;
        for (var i = 2; File.Exists(Path.Combine(folder, name)); i++)
        {
            name = $"{stem}-{i}{BackupFile.Extension}";
        }
        return name;
    }

    /// <summary>Whether <paramref name="name"/> is a plain backup file name (no folder part): what a route may name.</summary>
    public static bool IsBackupName(string name) =>
        name.Length is > 0 and <= 200 && name.EndsWith(BackupFile.Extension, StringComparison.Ordinal) && !name.StartsWith('.')
        && name.IndexOfAny(['/', '\\', '\0']) < 0 && name == Path.GetFileName(name);

    /// <summary>The backups in <paramref name="folder"/>, newest first; a file whose head cannot be read is listed with its problem.</summary>
    public static IReadOnlyList<BackupEntry> List(string folder)
    {
        if (!Directory.Exists(folder))
        {
            return [];
        }
        var entries = new List<BackupEntry>();
        foreach (var path in Directory.EnumerateFiles(folder, "*" + BackupFile.Extension))
        {
            var name = Path.GetFileName(path);
            if (name.StartsWith('.'))
            {
                continue;
            }
            var info = new FileInfo(path);
            var record = ReadVerification(path);
            try
            {
                var manifest = BackupFile.ReadManifest(path);
                entries.Add(new BackupEntry(name, manifest.CreatedAt, info.Length, manifest.Kind, manifest.LastSeq, manifest.SchemaVersion,
                    record is null ? null : record.Ok ? "ok" : "failed", record?.At, record is { Ok: false } ? string.Join("; ", record.Problems) : null));
            }
            catch (Exception ex) when (ex is BackupFormatException or IOException or UnauthorizedAccessException)
            {
                entries.Add(new BackupEntry(name, info.LastWriteTimeUtc, info.Length, "unknown", 0, 0, "failed", null, ex.Message));
            }
        }
        return [.. entries.OrderByDescending(e => e.CreatedAt).ThenByDescending(e => e.Name, StringComparer.Ordinal)];
    }

    public static void WriteVerification(string backupPath, BackupVerification verification, DateTimeOffset at)
    {
        var record = new VerificationRecord(verification.Ok, at, verification.Problems);
        var path = backupPath + VerifySuffix;
        var partial = path + ".tmp";
        using (var output = BackupFile.CreatePrivate(partial, FileMode.Create))
        {
            JsonSerializer.Serialize(output, record, BackupManifest.Json);
        }
        File.Move(partial, path, overwrite: true);
    }

    public static VerificationRecord? ReadVerification(string backupPath)
    {
        try
        {
            return File.Exists(backupPath + VerifySuffix)
                ? JsonSerializer.Deserialize<VerificationRecord>(File.ReadAllBytes(backupPath + VerifySuffix), BackupManifest.Json)
                : null;
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>How long a temporary file of a backup or a verification goes unchanged before <see cref="RemoveLeftovers"/> takes it for a killed run's.</summary>
    public static readonly TimeSpan LeftoverAge = TimeSpan.FromHours(24);

    /// <summary>
    /// Deletes the temporary files of backup, verification and restore runs that were killed (a run deletes its own when
    /// it ends, however it ends, but a kill -9 or a power cut leaves them, each the size of the database): the names those
    /// runs give (<c>.NAME.engram-backup.TOKEN.db.tmp</c> and its other stages, <c>.engram-verify-GUID.db</c> with SQLite's
    /// side files, a restore's <c>.engram.db.restore-GUID.tmp</c>), unchanged for <see cref="LeftoverAge"/>. The age is what makes it safe without a lock: a run under way,
    /// here or in another process sharing the folder, writes its files as it goes, and no run takes a day between writes.
    /// Returns the names deleted.
    /// </summary>
    public static IReadOnlyList<string> RemoveLeftovers(string folder, DateTimeOffset now)
    {
        var removed = new List<string>();
        if (!Directory.Exists(folder))
        {
            return removed;
        }
        foreach (var path in Directory.EnumerateFiles(folder, ".*"))
        {
            var name = Path.GetFileName(path);
            if (!IsLeftoverName(name))
            {
                continue;
            }
            try
            {
                if (now - File.GetLastWriteTimeUtc(path) < LeftoverAge)
                {
                    continue;
                }
                File.Delete(path);
                removed.Add(name);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to delete: the next run looks again.
            }
        }
        return removed;
    }

    /// <summary>Whether <paramref name="name"/> is one a backup or verification run gives its temporary files (see <see cref="RemoveLeftovers"/>).</summary>
    internal static bool IsLeftoverName(string name)
    {
        if (name.StartsWith(".engram-verify-", StringComparison.Ordinal))
        {
            var rest = name[".engram-verify-".Length..];
            var dot = rest.IndexOf('.', StringComparison.Ordinal);
            return dot == 32 && IsHex(rest[..dot]) && rest[dot..] is ".db" or ".db-journal" or ".db-wal" or ".db-shm";
        }
        // A restore's staged database in the data folder (StoreBackup.Restore): .engram.db.restore-GUID.tmp.
        const string Staged = "." + Storage.Sqlite.SqliteMemoryStore.FileName + ".restore-";
        if (name.StartsWith(Staged, StringComparison.Ordinal))
        {
            var rest = name[Staged.Length..];
            return rest.Length == 36 && rest.EndsWith(".tmp", StringComparison.Ordinal) && IsHex(rest[..32]);
        }
        // .NAME.TOKEN.STAGE: NAME a backup's file name, TOKEN 12 hex digits (BackupFile.PrepareNew), STAGE one of the run's.
        foreach (var stage in (ReadOnlySpan<string>)[".db.tmp", ".db.tmp-journal", ".db.tmp-wal", ".db.tmp-shm", ".gz.tmp", ".jsonl.tmp", ".tmp"])
        {
            if (name.Length > stage.Length + 14 && name[0] == '.' && name.EndsWith(stage, StringComparison.Ordinal))
            {
                var head = name[1..^stage.Length];
                var dot = head.LastIndexOf('.');
                if (dot > 0 && head.Length - dot - 1 == 12 && IsHex(head[(dot + 1)..]) && head[..dot].EndsWith(BackupFile.Extension, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }
        return false;
    }

    private static bool IsHex(string text) => text.Length > 0 && text.All(char.IsAsciiHexDigitLower);

    /// <summary>Deletes the scheduled backups of <paramref name="folder"/> that <paramref name="policy"/> does not keep; returns their names.</summary>
    public static IReadOnlyList<string> Prune(string folder, RetentionPolicy policy)
    {
        var scheduled = List(folder).Where(e => e.Kind == BackupKinds.Scheduled).Select(e => (e.Name, e.CreatedAt));
        var expired = BackupRetention.Expired(scheduled, policy);
        foreach (var name in expired)
        {
            var path = Path.Combine(folder, name);
            StoreBackup.DeleteQuietly(path, path + VerifySuffix);
        }
        return expired;
    }
}
