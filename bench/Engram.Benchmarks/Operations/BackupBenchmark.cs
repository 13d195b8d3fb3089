using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Mcp;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;
using Engram.Core;
using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.Operations;

/// <summary>
/// <c>backup</c>: times <c>engram backup</c>, <c>backup verify</c> and <c>restore</c> (the library calls the CLI makes)
/// on a store of <c>--count</c> memories (default 100k, the e2e corpus; the folder the <c>mcp</c> benchmark caches),
/// then the restored store's first open with its index rebuild. Each step runs <c>--runs</c> times (default 3).
/// </summary>
public static class BackupBenchmark
{
    private const int Seed = 20261202;

    public static async Task<int> RunAsync(string[] args)
    {
        var count = Flag(args, "--count", 100_000);
        var runs = Flag(args, "--runs", 3);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        Console.WriteLine("Engram backup benchmark");
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        var folder = await McpBenchFolder.EnsureAsync(dataRoot, new CorpusGenerator(Vocabulary.Load(), Seed), count, Seed);
        var database = Path.Combine(folder, SqliteMemoryStore.FileName);
        var scratch = Path.Combine(dataRoot, "backup-scratch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(scratch);
        try
        {
            var backup = new List<double>();
            var verify = new List<double>();
            var restore = new List<double>();
            var reopen = new List<double>();
            BackupManifest? manifest = null;
            for (var run = 0; run < runs; run++)
            {
                var file = Path.Combine(scratch, $"run{run}{BackupFile.Extension}");
                var started = Stopwatch.GetTimestamp();
                manifest = StoreBackup.Create(database, file, BackupKinds.Manual, TimeProvider.System);
                backup.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);

                started = Stopwatch.GetTimestamp();
                var verification = StoreBackup.Verify(file);
                verify.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
                if (!verification.Ok)
                {
                    throw new InvalidOperationException(string.Join("; ", verification.Problems));
                }

                var target = Path.Combine(scratch, $"restored{run}");
                started = Stopwatch.GetTimestamp();
                StoreBackup.Restore(file, target, force: false);
                restore.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);

                started = Stopwatch.GetTimestamp();
                await using (var engine = EngramEngine.OpenSqlite(target))
                {
                    await engine.EnsureIndexedAsync();
                }
                reopen.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
                await Console.Error.WriteLineAsync(Invariant($"run {run + 1}/{runs}: backup {backup[^1]:0.00} s, verify {verify[^1]:0.00} s, restore {restore[^1]:0.00} s, open + index rebuild {reopen[^1]:0.00} s"));
                File.Delete(file);
                Directory.Delete(target, recursive: true);
            }
            var size = new FileInfo(database).Length;
            Console.WriteLine(Invariant($"store   : {manifest!.Counts["memories"]:N0} memories, engram.db {size / 1048576.0:0.0} MB; backup file {manifest.PayloadBytes / 1048576.0:0.0} MB (gzip fastest)"));
            Console.WriteLine("| step | median s | min s | max s |");
            Console.WriteLine("|---|---:|---:|---:|");
            foreach (var (name, times) in new[] { ("backup (copy, compress, write)", backup), ("verify (checksums, integrity_check, counts)", verify),
                ("restore (verify, write, rename, open)", restore), ("restored store: open + index rebuild", reopen) })
            {
                var sorted = times.Order().ToList();
                Console.WriteLine(Invariant($"| {name} | {sorted[sorted.Count / 2]:0.00} | {sorted[0]:0.00} | {sorted[^1]:0.00} |"));
            }
            return 0;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
