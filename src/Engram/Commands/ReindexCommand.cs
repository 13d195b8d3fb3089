using System.CommandLine;
using Engram.Cli.Client;
using Engram.Cli.Output;
using Engram.Core;
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
        var data = new Option<string?>("--data") { Description = $"Data folder (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).", HelpName = "DIR" };
        var command = new Command("reindex", "Rebuild the search indexes from the store and save a fresh snapshot.") { data };
        command.SetAction(async (parse, ct) =>
        {
            var folder = parse.GetValue(data) ?? System.Environment.GetEnvironmentVariable(BackendOptions.DataVariable) ?? BackendOptions.DefaultData;
            if (!File.Exists(Path.Combine(Path.GetFullPath(folder), SqliteMemoryStore.FileName)))
            {
                Console.Error.WriteLine($"engram: no Engram database in '{Path.GetFullPath(folder)}'; pass --data DIR");
                return ExitCodes.UserError;
            }
            try
            {
                var options = ConfiguredOptions.Load();
                await using var engine = EngramEngine.OpenSqlite(folder, options.Limits, options.Search, options.Embeddings.CreateProvider(), snapshots: true);
                var bar = new ProgressBar(Console.Error);
                var report = await engine.RebuildAsync(new InlineProgress(bar.Draw), ct);
                bar.Done();
                Console.WriteLine($"Rebuilt the indexes: {report.Memories} memories up to seq {report.AppliedSeq} in {report.Milliseconds / 1000:0.0} s; snapshot: {engine.SnapshotPath}");
                return ExitCodes.Ok;
            }
            catch (StoreException ex)
            {
                Console.Error.WriteLine("engram: " + ex.Message);
                return ExitCodes.SystemError;
            }
        });
        return command;
    }

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
