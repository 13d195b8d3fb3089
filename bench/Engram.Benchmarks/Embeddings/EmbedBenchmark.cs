using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Store;
using Engram.Core.Embeddings.Transformer;
using Microsoft.ML.OnnxRuntime;

namespace Engram.Benchmarks.Embeddings;

/// <summary>
/// <c>embed</c>: the transformer embedder's throughput (sentences/s, short ~40-token and long ~300-token texts) as
/// configured, against the raw ONNX Runtime ceiling, and one setting at a time varied (threads, MaxBatchTokens,
/// graph optimisation, intra-op spinning); RSS after load and at the peak of a long batch; single-query latency
/// idle and while a document batch runs. Options: --models a,b --short N --long N --rounds R --seconds S --no-variants
/// --max-batch-tokens N (RSS figures are clean only for the first configuration of a fresh process: use --no-variants).
/// </summary>
public static class EmbedBenchmark
{
    private const string Query = "when did Melanie go camping with her kids"; // about 12 tokens with [CLS]/[SEP]

    public static async Task<int> RunAsync(string[] args)
    {
        var models = TransformerModels.All.ToList();
        int shortCount = 192, longCount = 48, rounds = 2;
        var seconds = 3.0;
        var variants = true;
        int? maxBatchTokens = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--models":
                    models = [.. args[++i].Split(',').Select(n => TransformerModels.Find(n) ?? throw new ArgumentException($"unknown model {n}"))];
                    break;
                case "--short":
                    shortCount = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--long":
                    longCount = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--rounds":
                    rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--seconds":
                    seconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--max-batch-tokens":
                    maxBatchTokens = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--no-variants":
                    variants = false;
                    break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}");
                    return 1;
            }
        }
        foreach (var line in MachineInfo.Describe(Path.GetTempPath()))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine($"text    : {(EmbedTexts.DataRoot() is { } root ? root + "/locomo-dev turns" : "synthetic (no ../shared/data)")}; ORT {OrtEnv.Instance().GetVersionString()}");
        foreach (var model in models)
        {
            await RunModelAsync(model, shortCount, longCount, rounds, TimeSpan.FromSeconds(seconds), variants, maxBatchTokens);
        }
        return 0;
    }

    private static async Task RunModelAsync(TransformerModel model, int shortCount, int longCount, int rounds, TimeSpan duration, bool variants, int? maxBatchTokens)
    {
        Console.WriteLine();
        Console.WriteLine($"== {model.Name} ({model.ModelId}), {Environment.ProcessorCount} cores, load {Load()}");
        GC.Collect();
        var before = RssSampler.Current();
        var defaults = new TransformerOptions { Model = model.Name };
        defaults.MaxBatchTokens = maxBatchTokens ?? defaults.MaxBatchTokens;
        using var provider = new TransformerEmbeddingProvider(model, defaults);
        var clock = Stopwatch.StartNew();
        provider.WarmUp();
        Console.WriteLine($"load: {clock.Elapsed.TotalSeconds:F2} s; RSS {RssSampler.Mb(before)} before, {RssSampler.Mb(RssSampler.Current())} after");
        var shortTexts = EmbedTexts.Make(provider, shortCount, 40);
        var longTexts = EmbedTexts.Make(provider, longCount, 300);
        var shortTokens = shortTexts.Select(t => provider.Tokenize(t)).ToList();
        Console.WriteLine($"texts: {shortTexts.Count} short (mean {shortTokens.Average(t => t.Length):F0} tokens), {longTexts.Count} long (mean {longTexts.Average(t => provider.Tokenize(t).Length):F0} tokens)");

        var configurations = new List<(string Label, TransformerOptions Options)> { ("as configured", defaults) };
        if (variants)
        {
            configurations.Add(("threads 1", With(defaults, o => o.Threads = 1)));
            foreach (var tokens in new[] { 1024, 2048, 4096, 8192, 16384 }.Where(t => t != defaults.MaxBatchTokens))
            {
                configurations.Add(($"MaxBatchTokens {tokens}", With(defaults, o => o.MaxBatchTokens = tokens)));
            }
            configurations.Add(("graph opt EXTENDED", With(defaults, o => o.GraphOptimization = GraphOptimizationLevel.ORT_ENABLE_EXTENDED)));
            configurations.Add(("graph opt BASIC", With(defaults, o => o.GraphOptimization = GraphOptimizationLevel.ORT_ENABLE_BASIC)));
            configurations.Add(("spinning on", With(defaults, o => o.AllowSpinning = true)));
        }
        var best = new Dictionary<string, (double Short, double Long, long PeakRss)>();
        var ceiling = new Dictionary<string, double>();
        for (var round = 0; round < rounds; round++)
        {
            // Contenders alternate: every configuration once per round, the best round kept.
            foreach (var (label, options) in configurations)
            {
                var embedder = label == "as configured" ? provider : new TransformerEmbeddingProvider(model, options);
                try
                {
                    embedder.WarmUp();
                    embedder.Embed(shortTexts.Take(8).ToList(), query: false);
                    var shortRate = Rate(() => embedder.Embed(shortTexts, query: false), shortTexts.Count, duration);
                    long peak;
                    double longRate;
                    using (var sampler = new RssSampler())
                    {
                        longRate = Rate(() => embedder.Embed(longTexts, query: false), longTexts.Count, duration);
                        peak = sampler.PeakBytes;
                    }
                    best[label] = best.TryGetValue(label, out var b)
                        ? (Math.Max(b.Short, shortRate), Math.Max(b.Long, longRate), Math.Max(b.PeakRss, peak))
                        : (shortRate, longRate, peak);
                }
                finally
                {
                    if (!ReferenceEquals(embedder, provider))
                    {
                        embedder.Dispose();
                    }
                }
                if (label == "as configured" || label == "threads 1" || label == "spinning on")
                {
                    var raw = RawOrtCeiling.SentencesPerSecond(model, options, shortTokens, duration);
                    ceiling[label] = Math.Max(ceiling.GetValueOrDefault(label), raw);
                }
            }
        }
        Console.WriteLine();
        Console.WriteLine($"| {model.Name,-16} | configuration        | short sent/s | long sent/s | peak RSS (long) | raw ORT short |");
        Console.WriteLine("|------------------|----------------------|--------------|-------------|-----------------|---------------|");
        foreach (var (label, _) in configurations)
        {
            var (s, l, p) = best[label];
            var raw = ceiling.TryGetValue(label, out var r) ? r.ToString("F0", CultureInfo.InvariantCulture) : "";
            Console.WriteLine($"| {"",-16} | {label,-20} | {s,12:F0} | {l,11:F0} | {RssSampler.Mb(p),15} | {raw,13} |");
        }

        await QueryLatencyAsync(provider, longTexts);
    }

    /// <summary>A single query's latency, idle and while document batches (long texts) run on the same embedder.</summary>
    private static async Task QueryLatencyAsync(TransformerEmbeddingProvider provider, List<string> documents)
    {
        Console.WriteLine();
        Console.WriteLine($"query \"{Query}\" ({provider.Tokenize(Query, query: true).Length} tokens with the model's prefix)");
        for (var i = 0; i < 5; i++)
        {
            await provider.EmbedQueryAsync(Query);
        }
        var idle = new List<long>();
        for (var i = 0; i < 100; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await provider.EmbedQueryAsync(Query);
            idle.Add(Stopwatch.GetTimestamp() - start);
        }
        Print("idle", new LatencyStats(idle));

        using var stop = new CancellationTokenSource();
        var embedded = 0;
        var batchTimes = new List<long>();
        var background = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                provider.Embed(documents, query: false);
                batchTimes.Add(Stopwatch.GetTimestamp() - start);
                Interlocked.Add(ref embedded, documents.Count);
            }
        });
        await Task.Delay(500);
        var busy = new List<long>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 60; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await provider.EmbedQueryAsync(Query);
            busy.Add(Stopwatch.GetTimestamp() - start);
            await Task.Delay(50);
        }
        var elapsed = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await background;
        Print($"during document batches ({documents.Count} long texts each, {new LatencyStats(batchTimes).Percentile(50):F0} ms a batch, {embedded / elapsed:F0} docs/s meanwhile)", new LatencyStats(busy));
    }

    private static void Print(string label, LatencyStats stats) =>
        Console.WriteLine($"query latency {label}: p50 {stats.Percentile(50):F1} ms, p95 {stats.Percentile(95):F1} ms, max {stats.Percentile(100):F1} ms (n={stats.Count})");

    private static double Rate(Action embed, int count, TimeSpan duration)
    {
        var clock = Stopwatch.StartNew();
        var done = 0;
        do
        {
            embed();
            done += count;
        }
        while (clock.Elapsed < duration);
        return done / clock.Elapsed.TotalSeconds;
    }

    private static TransformerOptions With(TransformerOptions defaults, Action<TransformerOptions> change)
    {
        var options = new TransformerOptions
        {
            Model = defaults.Model,
            Threads = defaults.Threads,
            MaxBatchTokens = defaults.MaxBatchTokens,
            GraphOptimization = defaults.GraphOptimization,
            AllowSpinning = defaults.AllowSpinning,
            ModelDirectory = defaults.ModelDirectory,
        };
        change(options);
        return options;
    }

    private static string Load()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
