using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Store;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Operations;

/// <summary>
/// <c>export [memories] [--data-root DIR]</c>: export and import rates (issue 14). Fills a store with
/// realistic memories (default 100,000; a fifth updated once, so they carry two history entries),
/// then times <see cref="StoreExport"/> to a file, <see cref="StoreImport"/> of that file into an empty
/// store, and a second import into the now full store (every record a duplicate). Prints records/s,
/// MB/s and the process's peak working set (the export streams: it should not grow with the store).
/// </summary>
public static class ExportBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var memories = args.Length > 0 && int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 100_000;
        var root = args.SkipWhile(a => a != "--data-root").Skip(1).FirstOrDefault() ?? Path.Combine(Path.GetTempPath(), "engram-export-bench-" + Environment.ProcessId);
        Directory.CreateDirectory(root);
        foreach (var line in MachineInfo.Describe(root))
        {
            Console.WriteLine(line);
        }
        try
        {
            var source = Path.Combine(root, "source");
            var file = Path.Combine(root, "export.jsonl");
            await using (var store = SqliteMemoryStore.Open(source))
            {
                var fill = Stopwatch.StartNew();
                await FillAsync(store, memories);
                Console.WriteLine($"fill    : {memories:N0} memories in {fill.Elapsed.TotalSeconds:0.0} s (through MemoryService batches of 500)");

                var before = Environment.WorkingSet;
                var summary = await AfterCollectionAsync(async () =>
                {
                    await using var output = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
                    return await StoreExport.WriteAsync(store, output, tenant: null, TimeProvider.System);
                });
                Console.WriteLine($"export  : {summary.Counts.Total:N0} records, {summary.Bytes / 1048576.0:0.0} MB in {summary.Elapsed.TotalSeconds:0.00} s = " +
                    $"{summary.Counts.Total / summary.Elapsed.TotalSeconds:N0} records/s, {summary.Bytes / 1048576.0 / summary.Elapsed.TotalSeconds:0.0} MB/s; " +
                    $"working set {before / 1048576} -> {Environment.WorkingSet / 1048576} MB (peak {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576} MB)");
            }
            var target = Path.Combine(root, "target");
            await using (var store = SqliteMemoryStore.Open(target))
            {
                foreach (var pass in new[] { "import (empty store)", "import (all duplicates)" })
                {
                    await using var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                    var report = await StoreImport.ReadAsync(store, input, continueOnError: false);
                    var seconds = report.Elapsed.TotalSeconds;
                    Console.WriteLine($"{pass,-24}: {report.Imported:N0} imported, {report.Skipped:N0} skipped, {report.Failed:N0} failed in {seconds:0.00} s = " +
                        $"{report.Processed / seconds:N0} records/s, {new FileInfo(file).Length / 1048576.0 / seconds:0.0} MB/s; " +
                        $"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576} MB");
                }
            }
            return 0;
        }
        finally
        {
            if (!args.Contains("--keep"))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    /// <summary>Runs <paramref name="run"/> after a full collection, so the working set it reports starts from the live heap.</summary>
    private static async Task<T> AfterCollectionAsync<T>(Func<Task<T>> run)
    {
        GC.Collect();
        return await run();
    }

    private static async Task FillAsync(SqliteMemoryStore store, int count)
    {
        var service = new MemoryService(store, new MemoryLimits(), TimeProvider.System, new Engram.Core.Search.WriteWatermark());
        var generator = new ContentGenerator(14, "export");
        var caller = Caller.Default("bench");
        for (var done = 0; done < count; done += 500)
        {
            var results = await service.CreateBatchAsync(caller, generator.NextBatch(Math.Min(500, count - done)));
            // A fifth of the memories get a second version, so the export carries history.
            await Task.WhenAll(results.Where((_, i) => i % 5 == 0).Select(r =>
                service.UpdateAsync(caller, r.Id!, new MemoryPatch { Importance = 0.9 })));
        }
    }
}
