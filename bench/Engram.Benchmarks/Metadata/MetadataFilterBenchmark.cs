using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engram.Benchmarks.Store;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.Metadata;

/// <summary>
/// <c>metadata [--count N] [--rounds R] [--data-root DIR]</c>: listings filtered by one metadata key over
/// N memories that all carry metadata, through <see cref="MemoryService.ListAsync"/>. A filter that
/// matches few rows walks most of the table and evaluates the JSON path on each row, which is what
/// the storage form of the metadata decides. Prints the median and range per filter, and the file size.
/// </summary>
public static class MetadataFilterBenchmark
{
    private static readonly Caller Caller = Caller.Default("bench");

    public static async Task<int> RunAsync(string[] args)
    {
        var count = int.Parse(Option(args, "--count") ?? "100000", CultureInfo.InvariantCulture);
        var rounds = int.Parse(Option(args, "--rounds") ?? "15", CultureInfo.InvariantCulture);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }

        using var folder = new BenchDataFolder(dataRoot);
        await using var engine = EngramEngine.OpenSqlite(folder.Path);
        var load = Stopwatch.StartNew();
        var random = new Random(20261202);
        for (var start = 0; start < count; start += 1000)
        {
            var batch = Enumerable.Range(start, Math.Min(1000, count - start)).Select(i => (NewMemory?)new NewMemory
            {
                Content = $"memory {i} of the metadata benchmark",
                Metadata = JsonDocument.Parse(
                    $"{{\"source\":\"import-{i % 50}\",\"project\":\"p{random.Next(1000)}\",\"score\":{random.Next(100)}.5,\"lang\":\"en\"," +
                    $"\"labels\":[\"a\",\"b\"],\"author\":{{\"name\":\"user {i % 300}\",\"id\":{i}}}}}").RootElement.Clone(),
            }).ToList();
            await engine.Memories.CreateBatchAsync(Caller, batch);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"loaded {count:N0} memories in {load.Elapsed.TotalSeconds:0.0} s; file {engine.Store.SizeBytes / 1048576.0:0.0} MiB"));
        Console.WriteLine();
        Console.WriteLine("filter (limit 50)                    matches   median ms        range ms");
        Console.WriteLine("--------------------------------------------------------------------------");

        foreach (var (label, key, value) in new[]
        {
            ("text, 1 in 1000 rows", "project", "p7"),
            ("text, none", "project", "nope"),
            ("number, 1 in 100 rows", "score", "42.5"),
            ("nested text, 1 in 300 rows", "author.name", "user 7"),
        })
        {
            var filter = new MemoryFilter { Metadata = new Dictionary<string, string> { [key] = value } };
            var matches = (await engine.Memories.ListAsync(Caller, filter, 50)).Items.Count; // warm-up
            var times = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                var watch = Stopwatch.StartNew();
                await engine.Memories.ListAsync(Caller, filter, 50);
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{label,-36} {matches,7} {times[times.Count / 2],11:0.0} {times[0],8:0.0}-{times[^1]:0.0}"));
        }
        return 0;
    }
}
