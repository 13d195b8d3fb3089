using System.Diagnostics;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Operations;

/// <summary>
/// The server's backups: made one at a time (on schedule or on request) from the open store's database file into
/// the backup folder (<c>Engram:Backup:Directory</c>, default <c>&lt;data&gt;/backups</c>), verified right after,
/// listed and verified on request, scheduled ones pruned by the retention policy. Records the backup metrics.
/// </summary>
public sealed partial class BackupService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IMemoryStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger<BackupService> _logger;

    public BackupService(IMemoryStore store, IOptions<EngramServerOptions> options, TimeProvider clock, ILogger<BackupService> logger)
    {
        _store = store;
        _clock = clock;
        _logger = logger;
        Options = options.Value.Backup;
        Folder = Options.FolderFor(options.Value.DataPath);
        BackupMetrics.Register();
        try
        {
            if (BackupCatalog.List(Folder).FirstOrDefault(e => e.Kind != "unknown") is { } newest)
            {
                BackupMetrics.Found(newest.CreatedAt);
                _lastSuccessMs = newest.CreatedAt.ToUnixTimeMilliseconds();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogListFailed(_logger, Folder, ex);
        }
    }

    public BackupOptions Options { get; }

    private long _lastSuccessMs = -1;
    private volatile bool _lastFailed;

    /// <summary>
    /// This instance's last good backup (or the newest found in its folder at start); null before any. The alert rules read
    /// these rather than the process-wide metrics, which every server of a process (tests) shares.
    /// </summary>
    public DateTimeOffset? LastSuccessAt => Interlocked.Read(ref _lastSuccessMs) is var ms and >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>Whether this instance's last backup failed (false before any).</summary>
    public bool LastFailed => _lastFailed;

    /// <summary>The store backed up (whose job lock a scheduled backup takes).</summary>
    public IMemoryStore Store => _store;

    /// <summary>The backup folder (absolute).</summary>
    public string Folder { get; }

    public IReadOnlyList<BackupEntry> List() => BackupCatalog.List(Folder);

    /// <summary>
    /// Makes a backup now, verifies it and records the verification beside it; with <paramref name="kind"/> scheduled,
    /// prunes the scheduled backups retention no longer keeps. A request while another backup runs gets a 409.
    /// </summary>
    public async Task<(BackupManifest Manifest, string Name, BackupVerification Verification)> CreateAsync(string kind, CancellationToken ct = default)
    {
        if (!await _gate.WaitAsync(TimeSpan.Zero, ct))
        {
            throw new ConflictException("a backup is running; try again when it has finished");
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            if (BackupFile.FolderProblem(Folder) is { } problem)
            {
                throw new BackupFolderException(problem + " (Engram:Backup:Directory)");
            }
            BackupFile.CreatePrivateFolder(Folder);
            var name = BackupCatalog.NewName(Folder, _clock.GetUtcNow(), kind);
            var path = Path.Combine(Folder, name);
            // A SQLite store's database file is copied (synchronous file and SQLite I/O: off the request's thread);
            // another store gets a logical backup, its export from one snapshot.
            if (_store is SqliteMemoryStore journaled)
            {
                await journaled.ApplyKvJournalAsync(ct); // relaxed SETs acknowledged so far are in the file it copies
            }
            var manifest = _store is SqliteMemoryStore sqlite
                ? await Task.Run(() => StoreBackup.Create(sqlite.DatabasePath, path, kind, _clock, ct: ct), ct)
                : await LogicalBackup.CreateAsync(_store, path, kind, _clock, ct);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            BackupMetrics.Succeeded(manifest.CreatedAt, seconds);
            Interlocked.Exchange(ref _lastSuccessMs, Math.Max(Interlocked.Read(ref _lastSuccessMs), manifest.CreatedAt.ToUnixTimeMilliseconds()));
            _lastFailed = false;
            LogCreated(_logger, name, manifest.LastSeq, new FileInfo(path).Length, seconds);
            var verification = await Task.Run(() => StoreBackup.Verify(path, ct: ct), ct);
            BackupCatalog.WriteVerification(path, verification, _clock.GetUtcNow());
            if (!verification.Ok)
            {
                LogVerifyFailed(_logger, name, string.Join("; ", verification.Problems));
            }
            if (kind == BackupKinds.Scheduled)
            {
                foreach (var expired in BackupCatalog.Prune(Folder, Options.Retention))
                {
                    LogPruned(_logger, expired);
                }
            }
            foreach (var leftover in BackupCatalog.RemoveLeftovers(Folder, _clock.GetUtcNow()))
            {
                LogLeftoverRemoved(_logger, leftover);
            }
            return (manifest, name, verification);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not ConflictException)
        {
            BackupMetrics.Failed(Stopwatch.GetElapsedTime(started).TotalSeconds);
            _lastFailed = true;
            LogFailed(_logger, ex);
            throw ex is IOException or UnauthorizedAccessException or SqliteException
                ? new StoreException($"the backup failed: {ex.Message}", ex)
                : ex;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Verifies the backup <paramref name="name"/> of the backup folder and records the result beside it.</summary>
    public async Task<BackupVerification> VerifyAsync(string name, CancellationToken ct = default)
    {
        var path = PathOf(name);
        var verification = await Task.Run(() => StoreBackup.Verify(path, ct: ct), ct);
        BackupCatalog.WriteVerification(path, verification, _clock.GetUtcNow());
        return verification;
    }

    /// <summary>When the next scheduled backup is due: an interval after the newest scheduled one, else a few minutes after start.</summary>
    public DateTimeOffset NextDue(TimeSpan interval)
    {
        var now = _clock.GetUtcNow();
        var newest = List().FirstOrDefault(e => e.Kind == BackupKinds.Scheduled);
        if (newest is null)
        {
            return now + FirstDelay;
        }
        var due = newest.CreatedAt + interval;
        return due > now + RetryDelay ? due : now + RetryDelay;
    }

    /// <summary>A fresh server waits this long before its first scheduled backup (its indexes load first).</summary>
    public static readonly TimeSpan FirstDelay = TimeSpan.FromMinutes(5);

    /// <summary>The wait before a backup that is overdue at start, or after a failed one.</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromMinutes(1);

    private string PathOf(string name)
    {
        if (!BackupCatalog.IsBackupName(name))
        {
            throw new ValidationException("name", $"'{name}' is not a backup name (engram-…{BackupFile.Extension}, no folder)");
        }
        var path = Path.Combine(Folder, name);
        return File.Exists(path) ? path : throw new NotFoundException($"no backup named '{name}' in the backup folder");
    }

    [LoggerMessage(EventId = 2400, Level = LogLevel.Information, Message = "Backup {Name} written: last seq {LastSeq}, {Bytes} bytes in {Seconds:0.00} s")]
    private static partial void LogCreated(ILogger logger, string name, long lastSeq, long bytes, double seconds);

    [LoggerMessage(EventId = 2401, Level = LogLevel.Error, Message = "Backup failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2402, Level = LogLevel.Error, Message = "Backup {Name} failed its verification: {Problems}")]
    private static partial void LogVerifyFailed(ILogger logger, string name, string problems);

    [LoggerMessage(EventId = 2403, Level = LogLevel.Information, Message = "Backup {Name} deleted by retention")]
    private static partial void LogPruned(ILogger logger, string name);

    [LoggerMessage(EventId = 2405, Level = LogLevel.Information, Message = "Removed {Name}, a temporary file a killed backup or verification left a day ago or more")]
    private static partial void LogLeftoverRemoved(ILogger logger, string name);

    [LoggerMessage(EventId = 2404, Level = LogLevel.Warning, Message = "Cannot list the backup folder {Folder}")]
    private static partial void LogListFailed(ILogger logger, string folder, Exception exception);
}
