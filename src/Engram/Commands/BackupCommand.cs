using System.CommandLine;
using System.Globalization;
using Engram.Cli.Client;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram backup --data DIR --out FILE</c> (an online snapshot of a store, also while a server runs on it),
/// <c>engram backup list</c> (the backup folder) and <c>engram backup verify FILE</c> (exit 0 only when sound).
/// </summary>
internal static class BackupCommand
{
    public static Command Create()
    {
        var data = DataOption();
        var store = StoreOption.Create();
        var output = new Option<string?>("--out") { Description = "The backup file to write (new; owner-only permissions). Default: a new name in the backup folder.", HelpName = "FILE" };
        var json = JsonOption();
        var command = new Command("backup", "Back up a store (online: a server may keep writing; a PostgreSQL store gets a logical backup), or list and verify backups.")
        {
            data, store, output, json,
        };
        command.Subcommands.Add(CreateList());
        command.Subcommands.Add(CreateVerify());
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var location = StoreOption.ResolveExisting(parse.GetValue(store), parse.GetValue(data));
                var postgres = StoreFactory.IsPostgres(location);
                // A PostgreSQL store's backups go to the configured folder, else <ENGRAM_DATA or ./data>/backups.
                var folder = postgres ? DataFolder(null) : location;
                var database = Path.Combine(folder, SqliteMemoryStore.FileName);
                var target = parse.GetValue(output);
                if (target is null)
                {
                    var backups = ConfiguredOptions.Load().Backup.FolderFor(folder);
                    BackupFile.CreatePrivateFolder(backups);
                    target = Path.Combine(backups, BackupCatalog.NewName(backups, DateTimeOffset.UtcNow, BackupKinds.Manual));
                }
                target = Path.GetFullPath(target);
                // A -wal or -shm that is not there yet, or the index snapshot, would not be caught by the test for an existing file.
                StoreFiles.RefuseOwnFile(folder, target, "--out");
                if (Directory.Exists(target))
                {
                    throw new ValidationException("--out", $"'{target}' is a folder; give the backup file to write, such as {Path.Combine(target, "engram-backup.db")}");
                }
                if (File.Exists(target))
                {
                    throw new ValidationException("--out", $"'{target}' exists already; backups are never overwritten, choose another name");
                }
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                BackupManifest manifest;
                if (postgres)
                {
                    await using var opened = StoreFactory.Open(location);
                    manifest = await LogicalBackup.CreateAsync(opened, target, BackupKinds.Manual, TimeProvider.System, ct);
                }
                else
                {
                    manifest = await Task.Run(() => StoreBackup.Create(database, target, BackupKinds.Manual, TimeProvider.System, ct: ct), ct);
                }
                var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
                var size = new FileInfo(target).Length;
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, new BackupCreated(target, size, Math.Round(seconds * 1000, 1), manifest));
                }
                else
                {
                    Console.WriteLine($"Backed up {StoreFactory.Describe(location)} to {target}: {Size(size)}, last seq {manifest.LastSeq}, {Counts(manifest)}, in {seconds:0.00} s");
                    Console.WriteLine(postgres
                        ? "A logical backup (Engram's export, verified by engram backup verify): no API keys or audit log; pg_dump or PITR keep those."
                        : "The file holds the API keys' hashes and the store's secret: keep it as safe as the store.");
                }
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    private static Command CreateList()
    {
        var data = DataOption();
        var dir = new Option<string?>("--dir") { Description = "The backup folder (default Engram:Backup:Directory, else <data>/backups).", HelpName = "DIR" };
        var json = JsonOption();
        var command = new Command("list", "List the backups in the backup folder: time, size, kind, last sequence, verified.") { data, dir, json };
        command.SetAction(parse =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var folder = parse.GetValue(dir) is { } given ? Path.GetFullPath(given) : ConfiguredOptions.Load().Backup.FolderFor(DataFolder(parse.GetValue(data)));
                if (parse.GetValue(dir) is not null && !Directory.Exists(folder))
                {
                    // A mistyped --dir is not an empty backup folder. (The default folder may not exist yet: no backups.)
                    throw new NotFoundException(File.Exists(folder) ? $"'{folder}' is a file, not a backup folder" : $"no folder '{folder}'");
                }
                var entries = BackupCatalog.List(folder);
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, new BackupListing(folder, entries));
                    return ExitCodes.Ok;
                }
                if (entries.Count == 0)
                {
                    Console.WriteLine($"No backups in {folder}");
                    return ExitCodes.Ok;
                }
                Console.WriteLine($"Backups in {folder}:");
                Console.WriteLine($"{"CREATED (UTC)",-20} {"SIZE",10} {"KIND",-9} {"LAST SEQ",10} {"VERIFIED",-8} NAME");
                foreach (var e in entries)
                {
                    Console.WriteLine($"{e.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),-20} {Size(e.SizeBytes),10} {e.Kind,-9} {e.LastSeq,10} {e.Verified ?? "no",-8} {e.Name}"
                        + (e.Problem is null ? "" : $"  ({e.Problem})"));
                }
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    private static Command CreateVerify()
    {
        var file = new Argument<string>("FILE") { Description = "The backup file." };
        var json = JsonOption();
        var command = new Command("verify", "Verify a backup: checksums, SQLite's integrity check, manifest counts. Exit 0 only when sound.") { file, json };
        command.SetAction((parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var path = Path.GetFullPath(parse.GetValue(file)!);
                RequireBackupFile(path);
                var verification = StoreBackup.Verify(path, ct: ct);
                if (File.Exists(path) && verification.Manifest is not null)
                {
                    TryRecord(path, verification);
                }
                Report(verification, path, asJson);
                return Task.FromResult(verification.Ok ? ExitCodes.Ok : ExitCodes.UserError);
            }
            catch (Exception ex)
            {
                return Task.FromResult(ErrorReporter.Report(ex, Console.Error, asJson, command));
            }
        });
        return command;
    }

    /// <summary>Prints a verification: "sound" on stdout, or each problem on stderr (as one problem object with --json).</summary>
    internal static void Report(BackupVerification verification, string path, bool json)
    {
        if (json)
        {
            var view = new VerifyResult(path, verification.Ok, verification.Problems, Math.Round(verification.Milliseconds, 1), verification.Manifest);
            if (verification.Ok)
            {
                JsonOutput.Write(Console.Out, view);
            }
            else
            {
                Console.Error.WriteLine(JsonOutput.Serialize(new CliProblem("Backup not sound", 422, $"{path} is not a sound backup: " + string.Join("; ", verification.Problems), ExitCodes.UserError)));
            }
            return;
        }
        if (verification.Ok)
        {
            var m = verification.Manifest!;
            Console.WriteLine($"{path} is sound: checksums match, integrity ok, counts match the manifest ({Counts(m)}); last seq {m.LastSeq}, " +
                $"schema {m.SchemaVersion}, made {m.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC by engram {m.EngramVersion}; checked in {verification.Milliseconds / 1000:0.00} s");
            return;
        }
        Console.Error.WriteLine($"engram: {path} is NOT a sound backup:");
        foreach (var problem in verification.Problems)
        {
            Console.Error.WriteLine("  - " + problem);
        }
    }

    private static void TryRecord(string path, BackupVerification verification)
    {
        try
        {
            BackupCatalog.WriteVerification(path, verification, DateTimeOffset.UtcNow);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A read-only backup folder: the verification stands, only the listing will not show it.
        }
    }

    /// <summary>Refuses a backup path that is a folder (saying so) or names nothing.</summary>
    internal static void RequireBackupFile(string path)
    {
        if (Directory.Exists(path))
        {
            throw new ValidationException("FILE", $"'{path}' is a folder; give the backup file in it (engram backup list --dir '{path}' shows them)");
        }
        if (!File.Exists(path))
        {
            throw new NotFoundException($"no backup file at '{path}'");
        }
    }

    internal static Option<string?> DataOption() =>
        new("--data") { Description = $"Data folder (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).", HelpName = "DIR" };

    internal static Option<bool> JsonOption() =>
        new("--json") { Description = "Print the result as one JSON object (and errors as JSON on stderr)." };

    internal static string DataFolder(string? given)
    {
        var folder = given ?? Environment.GetEnvironmentVariable(BackendOptions.DataVariable) ?? BackendOptions.DefaultData;
        return folder.Trim().Length == 0 ? throw new ValidationException("--data", "--data must name a folder") : Path.GetFullPath(folder);
    }

    internal static string Counts(BackupManifest m) =>
        $"{m.Counts.GetValueOrDefault("memories")} memories, {m.Counts.GetValueOrDefault("kv_keys")} keys, " +
        $"{m.Counts.GetValueOrDefault("graph_entities")} entities, {m.Counts.GetValueOrDefault("graph_relations")} relations" +
        (m.Counts.GetValueOrDefault("memory_links") + m.Counts.GetValueOrDefault("conversations") + m.Counts.GetValueOrDefault("extraction_jobs") > 0
            ? $", {m.Counts.GetValueOrDefault("memory_links")} memory links, {m.Counts.GetValueOrDefault("conversations")} conversations, " +
              $"{m.Counts.GetValueOrDefault("extraction_jobs")} extraction jobs"
            : "");

    internal static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KB",
        < 1024L * 1024 * 1024 => $"{bytes / 1024.0 / 1024:0.0} MB",
        _ => $"{bytes / 1024.0 / 1024 / 1024:0.00} GB",
    };

    internal sealed record BackupCreated(string File, long SizeBytes, double TookMs, BackupManifest Manifest);

    internal sealed record BackupListing(string Folder, IReadOnlyList<BackupEntry> Items);

    internal sealed record VerifyResult(string File, bool Ok, IReadOnlyList<string> Problems, double TookMs, BackupManifest? Manifest);
}
