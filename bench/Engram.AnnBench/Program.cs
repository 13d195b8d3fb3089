using System.Diagnostics;
using System.Globalization;
using Engram.AnnBench;
using Engram.Core.Embeddings;

// ANN benchmark: Engram's HnswIndex against Debian's python3-hnswlib on the same GloVe vectors, one thread each.
// See README.md beside this file for the command and the measured figures.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var options = BenchOptions.Parse(args);
if (options.KernelsOnly)
{
    KernelBench.Run();
    return 0;
}

var model = options.Model is null ? WordVectorModel.Embedded : WordVectorModel.Load(options.Model);
var n = options.N;
if (n + options.Queries > model.Count)
{
    n = model.Count - options.Queries;
    Console.WriteLine($"note: {model.ModelId} has {model.Count} words; using n = {n} (pass --model for a larger vocabulary, README.md)");
}
Console.WriteLine($"model {model.ModelId}: {n} data + {options.Queries} query vectors x {model.Dimensions} dims; M={options.M} efConstruction={options.EfConstruction} k={options.K}");
var dataset = AnnDataset.FromModel(model, n, options.Queries);

var clock = Stopwatch.StartNew();
var truth = dataset.GroundTruth(options.K);
Console.WriteLine($"exact ground truth: {clock.Elapsed.TotalSeconds:F1} s");

var rows = new List<BenchRow>();
if (!options.SkipHnswlib)
{
    rows.AddRange(HnswlibRunner.Run(options, dataset, truth));
}
rows.AddRange(EngramRunner.Run(options, dataset, truth, Engram.Core.Indexing.Vector.VectorQuantization.None));
if (!options.SkipInt8)
{
    rows.AddRange(EngramRunner.Run(options, dataset, truth, Engram.Core.Indexing.Vector.VectorQuantization.Int8));
    rows.AddRange(EngramRunner.Run(options, dataset, truth, Engram.Core.Indexing.Vector.VectorQuantization.Int8Rerank));
}
BenchRow.PrintTable(rows);
return 0;
