using System.CommandLine;
using Engram.Cli.Client;
using Engram.Cli.Output;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram reindex</c>: rebuilds the search indexes of a data folder from the store and writes a
/// fresh snapshot (engram.index), with a progress bar. A server running on the folder keeps its own
/// in-memory index and picks the new snapshot up at its next start.
/// </summary>
internal static class ReindexCommand
{
    public static Command Create()
    {
        var data = DataOption();
        var store = StoreOption.Create();
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object (and errors as JSON on stderr); no progress bar." };
        var command = new Command("reindex", "Rebuild the search indexes from the store and save a fresh snapshot.") { data, store, json };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                await RebuildAsync(StoreTarget.Resolve(parse.GetValue(store), parse.GetValue(data)), asJson, ct);
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    /// <summary>--data for reindex and maintenance: the store's folder, or with --store the instance's own folder (its snapshot).</summary>
    internal static Option<string?> DataOption() => new("--data")
    {
        Description = $"Data folder (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}); with --store, the instance's folder that holds its index snapshot.",
        HelpName = "DIR",
    };

    /// <summary>The data folder named by <c>--data</c> (else ENGRAM_DATA, else ./data); it must hold a store.</summary>
    internal static string ExistingStore(string? option)
    {
        var folder = Path.GetFullPath(option ?? System.Environment.GetEnvironmentVariable(BackendOptions.DataVariable) ?? BackendOptions.DefaultData);
        return File.Exists(Path.Combine(folder, SqliteMemoryStore.FileName))
            ? folder
            : throw new NotFoundException($"no Engram database in '{folder}'; pass --data DIR");
    }

    /// <summary>Rebuilds the indexes of <paramref name="target"/>'s store and saves its snapshot (also <c>engram maintenance reindex</c>).</summary>
    internal static async Task RebuildAsync(StoreTarget target, bool asJson, CancellationToken ct)
    {
        var options = ConfiguredOptions.Load();
        await using var engine = new EngramEngine(StoreFactory.Open(target.Location), options.Limits, options.Search, options.Embeddings.CreateProvider(),
            snapshotPath: target.SnapshotPath, keyValue: options.KeyValue);
        var bar = asJson ? null : new ProgressBar(Console.Error);
        var report = await engine.RebuildAsync(bar is null ? null : new InlineProgress<(string Phase, long Done, long Total)>(bar.Draw), ct);
        bar?.Done();
        if (asJson)
        {
            JsonOutput.Write(Console.Out, new ReindexResponse(report.Memories, report.AppliedSeq, Math.Round(report.Milliseconds, 1), engine.SnapshotPath));
        }
        else
        {
            Console.WriteLine($"Rebuilt the indexes: {report.Memories} memories up to seq {report.AppliedSeq} in {report.Milliseconds / 1000:0.0} s; " +
                (engine.SnapshotPath is { } path
                    ? "snapshot: " + path
                    : "no snapshot saved (name the instance's folder with --data, or set Engram:IndexSnapshotPath)"));
        }
    }

    /// <summary>What <c>reindex --json</c> prints.</summary>
    internal sealed record ReindexResponse(int Memories, long AppliedSeq, double TookMs, string? Snapshot);
}
