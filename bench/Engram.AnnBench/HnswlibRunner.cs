using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Engram.AnnBench;

/// <summary>Writes the vectors to a temp folder and runs hnswlib_bench.py with Debian's python3 (which has python3-hnswlib).</summary>
internal static class HnswlibRunner
{
    public static IEnumerable<BenchRow> Run(BenchOptions options, AnnDataset dataset, int[][] truth)
    {
        var folder = Directory.CreateTempSubdirectory("engram-annbench-");
        try
        {
            dataset.Write(folder.FullName);
            var script = Path.Combine(AppContext.BaseDirectory, "hnswlib_bench.py");
            var start = new ProcessStartInfo(options.Python)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var argument in new object[]
                     {
                         script, folder.FullName, dataset.Dimensions, dataset.Count, dataset.QueryCount, options.K, options.M,
                         options.EfConstruction, string.Join(',', options.Ef),
                     })
            {
                start.ArgumentList.Add(Convert.ToString(argument, System.Globalization.CultureInfo.InvariantCulture)!);
            }
            // One thread, like Engram's single-threaded build and search loop.
            start.Environment["OMP_NUM_THREADS"] = "1";
            Console.WriteLine("hnswlib: building and searching (python3-hnswlib, one thread)...");
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {options.Python}");
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"hnswlib_bench.py failed ({process.ExitCode}): {stderr.Result}\n" +
                    "Install it with: apt-get update && apt-get install -y python3-hnswlib python3-numpy");
            }
            using var json = JsonDocument.Parse(stdout);
            var build = dataset.Count / json.RootElement.GetProperty("build_seconds").GetDouble();
            Console.WriteLine($"hnswlib: build {build:F0} inserts/s");
            var rows = new List<BenchRow>();
            foreach (var search in json.RootElement.GetProperty("searches").EnumerateArray())
            {
                var ef = search.GetProperty("ef").GetInt32();
                var labels = MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(Path.Combine(folder.FullName, $"hnswlib_ef{ef}.i32"))).ToArray();
                var recall = AnnDataset.Recall(truth, q => labels.AsMemory(q * options.K, options.K));
                rows.Add(new BenchRow("hnswlib", ef, recall, dataset.QueryCount / search.GetProperty("seconds").GetDouble(), build));
            }
            return rows;
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
