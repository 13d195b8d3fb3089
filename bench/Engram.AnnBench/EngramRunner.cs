using System.Diagnostics;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;

namespace Engram.AnnBench;

/// <summary>Builds Engram's HnswIndex on one thread and times single-threaded searches at each ef.</summary>
internal static class EngramRunner
{
    public static IEnumerable<BenchRow> Run(BenchOptions options, AnnDataset dataset, int[][] truth, VectorQuantization quantization)
    {
        var name = quantization switch
        {
            VectorQuantization.None => "engram-float",
            VectorQuantization.Int8 => "engram-int8",
            _ => "engram-int8-rerank",
        };
        var index = new HnswIndex(dataset.Dimensions, new HnswOptions
        {
            M = options.M,
            EfConstruction = options.EfConstruction,
            Quantization = quantization,
        });
        Console.WriteLine($"{name}: building...");
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < dataset.Count; i++)
        {
            index.Add(i, dataset.Row(i));
        }
        var build = dataset.Count / clock.Elapsed.TotalSeconds;
        Console.WriteLine($"{name}: build {build:F0} inserts/s");

        var results = new ScoredDoc[options.K];
        var found = new int[dataset.QueryCount * options.K];
        var rows = new List<BenchRow>();
        foreach (var ef in options.Ef)
        {
            RunQueries(index, dataset, results, found, options.K, ef); // warm-up (JIT tiers, caches)
            var best = double.MaxValue;
            for (var pass = 0; pass < 3; pass++)
            {
                clock.Restart();
                RunQueries(index, dataset, results, found, options.K, ef);
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            var recall = AnnDataset.Recall(truth, q => found.AsMemory(q * options.K, options.K));
            rows.Add(new BenchRow(name, ef, recall, dataset.QueryCount / best, build));
        }
        return rows;
    }

    private static void RunQueries(HnswIndex index, AnnDataset dataset, ScoredDoc[] results, int[] found, int k, int ef)
    {
        for (var q = 0; q < dataset.QueryCount; q++)
        {
            var count = index.Search(dataset.Query(q), results, new AllDocs(), ef);
            for (var i = 0; i < k; i++)
            {
                found[(q * k) + i] = i < count ? results[i].Doc : -1;
            }
        }
    }
}
