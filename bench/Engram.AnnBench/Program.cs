using System.Diagnostics;
using System.Globalization;
using Engram.AnnBench;
using Engram.Core.Embeddings;
using Engram.Core.Embeddings.Transformer;
using Engram.Core.Indexing.Vector;

// ANN benchmark: Engram's HnswIndex against hnswlib (compiled here for this CPU, and Debian's python3-hnswlib) on the
// same vectors, one thread each, the contenders' timed passes alternating. See README.md beside this file.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var options = BenchOptions.Parse(args);
if (options.KernelsOnly)
{
    KernelBench.Run();
    return 0;
}

AnnDataset dataset;
if (options.Dataset == "sentences")
{
    var model = TransformerModels.ArcticXs;
    var vectors = SentenceVectors.Load(model, options.Sentences, TimeSpan.FromSeconds(options.EmbedSeconds), out var count);
    dataset = AnnDataset.FromVectors(vectors, model.Dimensions, Math.Min(options.Queries, count / 10));
    Console.WriteLine($"{model.Name} sentence vectors: {dataset.Count} data + {dataset.QueryCount} held-out query vectors x {dataset.Dimensions} dims; M={options.M} efConstruction={options.EfConstruction} k={options.K}");
}
else
{
    var model = options.Model is null ? WordVectorModel.Embedded : WordVectorModel.Load(options.Model);
    var n = options.N;
    if (n + options.Queries > model.Count)
    {
        n = model.Count - options.Queries;
        Console.WriteLine($"note: {model.ModelId} has {model.Count} words; using n = {n} (pass --model for a larger vocabulary, README.md)");
    }
    Console.WriteLine($"model {model.ModelId}: {n} data + {options.Queries} query vectors x {model.Dimensions} dims; M={options.M} efConstruction={options.EfConstruction} k={options.K}");
    dataset = AnnDataset.FromModel(model, n, options.Queries);
}
Console.WriteLine($"load {File.ReadAllText("/proc/loadavg").Trim()}");

var clock = Stopwatch.StartNew();
var truth = dataset.GroundTruth(options.K);
Console.WriteLine($"exact ground truth: {clock.Elapsed.TotalSeconds:F1} s");

var folder = Directory.CreateTempSubdirectory("engram-annbench-");
var contenders = new List<IAnnContender>();
try
{
    dataset.Write(folder.FullName);
    if (!options.SkipNative)
    {
        contenders.Add(HnswlibRunner.StartNative(options, dataset, folder.FullName));
    }
    if (!options.SkipHnswlib)
    {
        contenders.Add(HnswlibRunner.StartPython(options, dataset, folder.FullName));
    }
    contenders.Add(EngramRunner.Build(options, dataset, VectorQuantization.None));
    if (!options.SkipInt8)
    {
        contenders.Add(EngramRunner.Build(options, dataset, VectorQuantization.Int8));
        contenders.Add(EngramRunner.Build(options, dataset, VectorQuantization.Int8Rerank));
    }

    var rows = new List<BenchRow>();
    foreach (var ef in options.Ef)
    {
        var best = new double[contenders.Count];
        var recall = new double[contenders.Count];
        Array.Fill(best, double.MaxValue);
        // One warm-up pass each (JIT tiers, caches), then the timed passes in turn, so load changes hit every contender alike.
        for (var pass = -1; pass < options.Passes; pass++)
        {
            for (var c = 0; c < contenders.Count; c++)
            {
                var (seconds, labels) = contenders[c].Pass(ef);
                if (pass >= 0)
                {
                    best[c] = Math.Min(best[c], seconds);
                }
                recall[c] = AnnDataset.Recall(truth, q => labels.AsMemory(q * options.K, options.K));
            }
        }
        for (var c = 0; c < contenders.Count; c++)
        {
            rows.Add(new BenchRow(contenders[c].Name, ef, recall[c], dataset.QueryCount / best[c], contenders[c].BuildInsertsPerSecond));
        }
        Console.WriteLine($"ef {ef}: done");
    }
    BenchRow.PrintTable([.. rows.OrderBy(r => contenders.FindIndex(c => c.Name == r.Impl)).ThenBy(r => r.Ef)]);
}
finally
{
    contenders.ForEach(c => c.Dispose());
    folder.Delete(recursive: true);
}
return 0;
