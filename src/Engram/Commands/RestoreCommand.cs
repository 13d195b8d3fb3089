using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Server;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram restore FILE --data NEWDIR [--force]</c>: verifies the backup, then writes its database into the folder
/// atomically (temporary file, sync, rename). Refuses a folder that holds a store unless <c>--force</c>, and a folder a
/// server is running on in any case. The indexes are rebuilt when the store is next served (or by <c>engram reindex</c>).
/// </summary>
internal static class RestoreCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "The backup file." };
        var data = new Option<string?>("--data") { Description = "The folder to restore into (new, or --force to replace its store).", HelpName = "DIR" };
        var store = new Option<string?>("--store") { Description = "Restore into this PostgreSQL database instead (it must be empty): postgres://user:password@host:port/database.", HelpName = "URL" };
        var force = new Option<bool>("--force") { Description = "Replace the store in --data (its WAL, key-value journal and index snapshot go too)." };
        var json = BackupCommand.JsonOption();
        var command = new Command("restore",
            "Restore a backup into a data folder or an empty PostgreSQL database (verified first; refuses to overwrite a store without --force). Backups are portable between the backends.")
        {
            file, data, store, force, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            string? createdFolder = null;
            var restored = false;
            try
            {
                var path = Path.GetFullPath(parse.GetValue(file)!);
                var url = parse.GetValue(store);
                StoreOption.Check(url);
                if ((url is null) == (parse.GetValue(data) is null))
                {
                    throw new ValidationException("--data", "give the folder to restore into with --data DIR, or a PostgreSQL database with --store URL (one of them)");
                }
                BackupCommand.RequireBackupFile(path);
                Client.ConfiguredOptions.RefuseIfReadOnly("restore a backup into a store");
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var folder = url is null ? BackupCommand.DataFolder(parse.GetValue(data)) : StoreFactory.Describe(url);
                if (url is null && File.Exists(folder))
                {
                    throw new ValidationException("--data", $"'{folder}' is a file; --data names the folder to restore into");
                }
                // A folder this restore makes is removed again when nothing is restored (a refused or failed restore left it
                // behind, with the lock file in it, looking like a data folder).
                createdFolder = url is null && !Directory.Exists(folder) ? folder : null;
                var verification = url is not null
                    ? await RestoreIntoStoreAsync(path, url, ct)
                    : await RestoreIntoFolderAsync(path, folder, parse.GetValue(force), ct);
                if (!verification.Ok)
                {
                    BackupCommand.Report(verification, path, asJson);
                    if (!asJson)
                    {
                        Console.Error.WriteLine($"engram: nothing was restored into {folder}");
                    }
                    return ExitCodes.UserError;
                }
                var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
                var m = verification.Manifest!;
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, new RestoreResult(path, folder, Math.Round(seconds * 1000, 1), m));
                }
                else
                {
                    Console.WriteLine($"Restored {path} into {folder}: last seq {m.LastSeq}, {BackupCommand.Counts(m)}, in {seconds:0.00} s. " +
                        "The indexes are rebuilt when the store is next served.");
                }
                restored = true;
                return ExitCodes.Ok;
            }
            catch (RestoreRefusedException ex)
            {
                return ErrorReporter.Report(new ConflictException(ex.Message), Console.Error, asJson, command);
            }
            catch (ServerLockedException ex)
            {
                return ErrorReporter.Report(new ConflictException(ex.Message), Console.Error, asJson, command);
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
            finally
            {
                if (!restored && createdFolder is not null)
                {
                    RemoveQuietly(createdFolder);
                }
            }
        });
        return command;
    }

    private static async Task<BackupVerification> RestoreIntoStoreAsync(string path, string url, CancellationToken ct)
    {
        await using var target = StoreFactory.Open(url);
        return await LogicalBackup.RestoreAsync(path, target, ct, Client.ConfiguredOptions.ImportValidation());
    }

    /// <summary>A SQLite database backup is written into place; a logical one is imported into a new store in the folder.</summary>
    private static async Task<BackupVerification> RestoreIntoFolderAsync(string path, string folder, bool force, CancellationToken ct)
    {
        // No server may run on the folder while its database is replaced; its lock keeps one from starting meanwhile.
        using var serverLock = ServerLock.Acquire(folder);
        if (BackupFile.ReadManifest(path).Content != BackupContents.Export)
        {
            return StoreBackup.Restore(path, folder, force, ct);
        }
        if (File.Exists(Path.Combine(folder, Core.Storage.Sqlite.SqliteMemoryStore.FileName)))
        {
            throw new RestoreRefusedException($"'{folder}' holds an Engram store already; restore a logical backup into a new folder");
        }
        await using var target = Core.Storage.Sqlite.SqliteMemoryStore.Open(folder);
        return await LogicalBackup.RestoreAsync(path, target, ct, Client.ConfiguredOptions.ImportValidation());
    }

    private static void RemoveQuietly(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The refusal already said what went wrong; a folder left behind is harmless.
        }
    }

    internal sealed record RestoreResult(string File, string Folder, double TookMs, BackupManifest Manifest);
}
