using System.CommandLine;
using Engram.Cli.Client;
using Engram.Cli.Output;
using Engram.Core;
using Engram.Core.Common;
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
        var data = new Option<string?>("--data") { Description = $"Data folder (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).", HelpName = "DIR" };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object (and errors as JSON on stderr); no progress bar." };
        var command = new Command("reindex", "Rebuild the search indexes from the store and save a fresh snapshot.") { data, json };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var folder = Path.GetFullPath(parse.GetValue(data) ?? System.Environment.GetEnvironmentVariable(BackendOptions.DataVariable) ?? BackendOptions.DefaultData);
                if (!File.Exists(Path.Combine(folder, SqliteMemoryStore.FileName)))
                {
                    throw new NotFoundException($"no Engram database in '{folder}'; pass --data DIR");
                }
                var options = ConfiguredOptions.Load();
                await using var engine = EngramEngine.OpenSqlite(folder, options.Limits, options.Search, options.Embeddings.CreateProvider(), snapshots: true);
                var bar = asJson ? null : new ProgressBar(Console.Error);
                var report = await engine.RebuildAsync(bar is null ? null : new InlineProgress(bar.Draw), ct);
                bar?.Done();
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, new ReindexResponse(report.Memories, report.AppliedSeq, Math.Round(report.Milliseconds, 1), engine.SnapshotPath));
                }
                else
                {
                    Console.WriteLine($"Rebuilt the indexes: {report.Memories} memories up to seq {report.AppliedSeq} in {report.Milliseconds / 1000:0.0} s; snapshot: {engine.SnapshotPath}");
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

    /// <summary>What <c>reindex --json</c> prints.</summary>
    internal sealed record ReindexResponse(int Memories, long AppliedSeq, double TookMs, string? Snapshot);

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and draw out of order).</summary>
    private sealed class InlineProgress(Action<(string Phase, long Done, long Total)> report) : IProgress<(string Phase, long Done, long Total)>
    {
        public void Report((string Phase, long Done, long Total) value) => report(value);
    }

    /// <summary>A one-line bar redrawn in place on a terminal; on a pipe, a line every 10 %.</summary>
    private sealed class ProgressBar(TextWriter output)
    {
        private const int Width = 30;
        private readonly bool _interactive = !Console.IsErrorRedirected;
        private int _lastDecile = -1;
        private string _phase = "";

        public void Draw((string Phase, long Done, long Total) progress)
        {
            if (progress.Phase != _phase)
            {
                if (_phase.Length > 0 && _interactive)
                {
                    output.WriteLine();
                }
                _phase = progress.Phase;
                _lastDecile = -1;
            }
            var fraction = progress.Total == 0 ? 1.0 : Math.Clamp((double)progress.Done / progress.Total, 0, 1);
            var filled = (int)(fraction * Width);
            var line = $"[{new string('#', filled)}{new string('-', Width - filled)}] {fraction,4:P0}  {progress.Done:N0}/{progress.Total:N0} {progress.Phase}";
            if (_interactive)
            {
                output.Write("\r" + line);
            }
            else if ((int)(fraction * 10) > _lastDecile)
            {
                _lastDecile = (int)(fraction * 10);
                output.WriteLine(line);
            }
        }

        public void Done()
        {
            if (_interactive)
            {
                output.WriteLine();
            }
        }
    }
}
