using System.Diagnostics;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;

namespace Engram.AnnBench;

/// <summary>Engram's HnswIndex in one storage mode, built on one thread; a pass runs every query single-threaded.</summary>
internal sealed class EngramRunner : IAnnContender
{
    private readonly HnswIndex _index;
    private readonly AnnDataset _dataset;
    private readonly int _k;
    private readonly ScoredDoc[] _results;

    private EngramRunner(string name, HnswIndex index, AnnDataset dataset, int k, double build)
    {
        Name = name;
        _index = index;
        _dataset = dataset;
        _k = k;
        _results = new ScoredDoc[k];
        BuildInsertsPerSecond = build;
    }

    public string Name { get; }

    public double BuildInsertsPerSecond { get; }

    public static EngramRunner Build(BenchOptions options, AnnDataset dataset, VectorQuantization quantization)
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
        return new EngramRunner(name, index, dataset, options.K, build);
    }

    public (double Seconds, int[] Labels) Pass(int ef)
    {
        var found = new int[_dataset.QueryCount * _k];
        var clock = Stopwatch.StartNew();
        for (var q = 0; q < _dataset.QueryCount; q++)
        {
            var count = _index.Search(_dataset.Query(q), _results, new AllDocs(), ef);
            for (var i = 0; i < _k; i++)
            {
                found[(q * _k) + i] = i < count ? _results[i].Doc : -1;
            }
        }
        return (clock.Elapsed.TotalSeconds, found);
    }

    public void Dispose()
    {
    }
}
