using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Operations;
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
        var data = new Option<string?>("--data") { Description = "The folder to restore into (new, or --force to replace its store).", HelpName = "DIR", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace the store in --data (its WAL and index snapshot go too)." };
        var json = BackupCommand.JsonOption();
        var command = new Command("restore", "Restore a backup into a data folder (verified first; refuses to overwrite a store without --force).") { file, data, force, json };
        command.SetAction((parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var path = Path.GetFullPath(parse.GetValue(file)!);
                var folder = BackupCommand.DataFolder(parse.GetValue(data));
                if (!File.Exists(path))
                {
                    throw new NotFoundException($"no backup file at '{path}'");
                }
                // No server may run on the folder while its database is replaced; its lock keeps one from starting meanwhile.
                using var serverLock = ServerLock.Acquire(folder);
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var verification = StoreBackup.Restore(path, folder, parse.GetValue(force), ct);
                if (!verification.Ok)
                {
                    BackupCommand.Report(verification, path, asJson);
                    if (!asJson)
                    {
                        Console.Error.WriteLine($"engram: nothing was restored into {folder}");
                    }
                    return Task.FromResult(ExitCodes.UserError);
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
                        "The indexes are rebuilt when the store is next served (or run engram reindex --data " + folder + ").");
                }
                return Task.FromResult(ExitCodes.Ok);
            }
            catch (RestoreRefusedException ex)
            {
                return Task.FromResult(ErrorReporter.Report(new ConflictException(ex.Message), Console.Error, asJson, command));
            }
            catch (ServerLockedException ex)
            {
                return Task.FromResult(ErrorReporter.Report(new ConflictException(ex.Message), Console.Error, asJson, command));
            }
            catch (Exception ex)
            {
                return Task.FromResult(ErrorReporter.Report(ex, Console.Error, asJson, command));
            }
        });
        return command;
    }

    internal sealed record RestoreResult(string File, string Folder, double TookMs, BackupManifest Manifest);
}
