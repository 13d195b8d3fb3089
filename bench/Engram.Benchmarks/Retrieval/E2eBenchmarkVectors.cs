using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Store;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Embeddings;
using Engram.Core.Embeddings.Transformer;
using Engram.Core.Indexing.Vector;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Server;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// <c>e2e-vectors [--size 1000000] [--runs glove,arctic-float,arctic-int8,arctic-int8rerank]</c>: HTTP search
/// latency and RAM per memory over one large store, with the built-in GloVe embedder and with the transformer
/// (arctic-embed-xs, 384 dimensions) whose document vectors come from the store's persisted vector table. The
/// store is built once and cached under the data root: the memories of the e2e corpus, then one 384-d vector
/// per memory written straight into the vector table under the transformer's model id (real embeddings of the
/// first <c>--sentences</c> memories, each memory taking sentence i mod S plus Gaussian noise, normalised), so
/// the index loads them without embedding; only the queries go through the model. Each run's index snapshot is
/// kept beside the store under its run name, so a second invocation loads instead of building the graph.
/// </summary>
public static class E2eVectorBenchmark
{
    private static readonly Caller Bench = Caller.Default("bench");

    public static async Task<int> RunAsync(string[] args)
    {
        if (Parse(args) is not { } settings)
        {
            await Console.Error.WriteLineAsync("usage: e2e-vectors [--size N] [--runs glove,arctic-float,arctic-int8,arctic-int8rerank] [--queries N] [--sentences N] [--noise X] [--seed N] [--data-root DIR] [--profile]");
            return 1;
        }
        Console.WriteLine("Engram end-to-end search with persisted vectors");
        foreach (var line in MachineInfo.Describe(settings.DataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine(Invariant($"setup   : {settings.Size:N0} memories of the e2e corpus; {settings.Queries:N0} keyword queries, k=10, after {settings.WarmUp} warm-up queries, 1 HTTP client; transformer vectors: {settings.Sentences:N0} embedded sentences + noise {settings.Noise}; seed {settings.Seed}"));
        Console.WriteLine();

        var corpus = new CorpusGenerator(Vocabulary.Load(), settings.Seed);
        var folder = Path.Combine(settings.DataRoot, Invariant($"e2e-vectors-{settings.Size}-seed{settings.Seed}"));
        await EnsureStoreAsync(folder, corpus, settings);
        var queries = QueryGenerator.Generate(corpus, settings.Size, settings.Queries, settings.Seed).Select(q => string.Join(' ', q)).ToList();
        var warmUp = QueryGenerator.Generate(corpus, settings.Size, settings.WarmUp, settings.Seed + 1).Select(q => string.Join(' ', q)).ToList();
        foreach (var run in settings.Runs)
        {
            await RunOneAsync(folder, run, settings.Size, queries, warmUp, settings.Profile);
        }
        return 0;
    }

    private static async Task RunOneAsync(string folder, string run, long size, List<string> queries, List<string> warmUp, bool profile)
    {
        await Console.Error.WriteLineAsync($"e2e-vectors {run}");
        Action<EngramServerOptions> configure = run switch
        {
            "glove" => o => o.Embeddings.Provider = EmbeddingSettings.Builtin,
            "arctic-float" => o => Transformer(o, VectorQuantization.None),
            "arctic-int8" => o => Transformer(o, VectorQuantization.Int8),
            "arctic-int8rerank" => o => Transformer(o, VectorQuantization.Int8Rerank),
            _ => throw new ArgumentException($"unknown run '{run}'"),
        };

        // The baseline: an empty store with the same settings, after one search (model loaded, search path compiled).
        MemorySnapshot empty;
        using (var emptyFolder = new BenchDataFolder(Path.GetTempPath()))
        {
            await using var idle = await E2eServer.StartAsync(emptyFolder.Path, configure: configure);
            await idle.SearchHttpAsync(new SearchRequest { Query = "warm up", K = 10 });
            empty = MemorySnapshot.Take();
        }

        var cached = Path.Combine(folder, "snapshots", run + ".index");
        var live = Path.Combine(folder, IndexSnapshot.FileName);
        if (File.Exists(cached))
        {
            File.Move(cached, live, overwrite: true);
        }
        else
        {
            File.Delete(live);
        }

        var clock = Stopwatch.StartNew();
        await using (var server = await E2eServer.StartAsync(folder, configure: configure))
        {
            var engine = server.Engine;
            var report = await engine.EnsureIndexedAsync();
            var indexed = clock.Elapsed;
            var lastProgress = clock.Elapsed;
            while (engine.Index.StagedVectors > 0 || engine.Index.PendingVectors > 0)
            {
                if (engine.Follower.EmbeddedCount > 1_000 && run != "glove")
                {
                    throw new InvalidOperationException("the server is embedding documents: the stored vectors were not used");
                }
                if (clock.Elapsed - lastProgress > TimeSpan.FromSeconds(30))
                {
                    lastProgress = clock.Elapsed;
                    await Console.Error.WriteLineAsync(Invariant($"  {clock.Elapsed.TotalSeconds:0} s: staged {engine.Index.StagedVectors:N0}, pending {engine.Index.PendingVectors:N0}, {MemorySnapshot.Brief()}"));
                }
                await Task.Delay(200);
            }
            var graphBuilt = clock.Elapsed;
            // Like the baseline: one search first, so the model is loaded on both sides of the difference.
            await server.SearchHttpAsync(new SearchRequest { Query = "warm up", K = 10 });
            var loaded = MemorySnapshot.Take();
            await Console.Error.WriteLineAsync(Invariant($"  ready: {report.Source} ({report.Reason}) in {indexed.TotalSeconds:0.0} s, graph in {graphBuilt.TotalSeconds:0.0} s; {MemorySnapshot.Brief()}"));

            var rows = new List<SearchRow>();
            Task OverHttp(string q) => server.SearchHttpAsync(new SearchRequest { Query = q, K = 10 });
            if (run == "glove")
            {
                rows.Add(await SearchLatency.RunAsync("HTTP POST /v1/search", 1, queries, warmUp, OverHttp));
                if (profile)
                {
                    await E2eProfile.RunAsync(engine, queries);
                }
            }
            else
            {
                // Every measured query is new to the cache in the first pass (the warm-up queries differ), so
                // the first row embeds each query with the model; the second repeats them: all cache hits.
                rows.Add(await SearchLatency.RunAsync("HTTP, query embedded by the model", 1, queries, warmUp, OverHttp));
                rows.Add(await SearchLatency.RunAsync("HTTP, same queries again (cache hits)", 1, queries, [], OverHttp));
            }

            Console.WriteLine(Invariant($"== {run}: {size:N0} memories, model {engine.Embedder.ModelId} ({engine.Embedder.Dimensions} d), quantization {engine.Index.Vectors?.GetType().Name} {(engine.Index.Vectors as HnswIndex)?.Options.Quantization} =="));
            Console.WriteLine(Invariant($"index ready from {report.Source} ({report.Reason}) in {indexed.TotalSeconds:0.0} s, graph built at {graphBuilt.TotalSeconds:0.0} s; documents embedded at start: {engine.Follower.EmbeddedCount:N0}; vectors in the index: {engine.Index.VectorCount:N0}"));
            Console.WriteLine();
            Console.WriteLine("RAM after a full compacting GC");
            Console.WriteLine($"{"measure",-30} {"empty MB",9} {"loaded MB",10} {"B/memory",9}");
            Console.WriteLine(new string('-', 61));
            Ram("managed heap", empty.ManagedBytes, loaded.ManagedBytes, size);
            Ram("working set", empty.WorkingSetBytes, loaded.WorkingSetBytes, size);
            Ram("private bytes", empty.PrivateBytes, loaded.PrivateBytes, size);
            Console.WriteLine();
            Console.WriteLine($"{"search, k=10",-42} {"clients",7} {"queries/s",10} {"p50 ms",8} {"p95 ms",8} {"p99 ms",8}");
            Console.WriteLine(new string('-', 88));
            foreach (var row in rows)
            {
                Console.WriteLine(Invariant($"{row.Label,-42} {row.Clients,7} {row.QueriesPerSecond,10:N0} {row.Latency.Percentile(50),8:0.00} {row.Latency.Percentile(95),8:0.00} {row.Latency.Percentile(99),8:0.00}"));
            }
            if (engine.QueryCache is { } cache)
            {
                Console.WriteLine(Invariant($"query cache: {cache.Hits:N0} hits, {cache.Misses:N0} misses, {cache.Count:N0} entries of {cache.Capacity:N0}"));
            }
            Console.WriteLine();
            // The snapshot written after the rebuild holds the vectors still staged; this one holds the built
            // graph, so the next invocation of this run loads it instead of inserting every vector again.
            await engine.SaveSnapshotAsync(force: true);
        }
        // The server wrote its snapshot on stop: keep it under the run's name for the next invocation.
        if (File.Exists(live))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(cached)!);
            File.Move(live, cached, overwrite: true);
        }
    }

    private static void Ram(string label, long empty, long loaded, long size) =>
        Console.WriteLine(Invariant($"{label,-30} {empty / 1048576.0,9:0} {loaded / 1048576.0,10:0} {(loaded - empty) / (double)size,9:N0}"));

    private static void Transformer(EngramServerOptions o, VectorQuantization quantization)
    {
        o.Embeddings.Provider = EmbeddingSettings.TransformerProvider;
        o.Embeddings.Transformer.Model = TransformerModels.ArcticXs.Name;
        o.Search.VectorQuantization = quantization;
    }

    /// <summary>Builds the store once (memories, then transformer vectors written straight into the vector table) and marks it done.</summary>
    private static async Task EnsureStoreAsync(string folder, CorpusGenerator corpus, Settings settings)
    {
        using var transformer = new TransformerEmbeddingProvider(TransformerModels.ArcticXs, new TransformerOptions());
        var marker = Path.Combine(folder, "built.ok");
        var expected = Invariant($"size {settings.Size} seed {settings.Seed} sentences {settings.Sentences} noise {settings.Noise} model {transformer.ModelId}");
        if (File.Exists(marker) && await File.ReadAllTextAsync(marker) == expected && await StoredVectorsAsync(folder) == settings.Size)
        {
            await Console.Error.WriteLineAsync($"store cached in {folder}");
            return;
        }
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
        Directory.CreateDirectory(folder);
        var clock = Stopwatch.StartNew();

        // Real document embeddings of S distinct memories of the corpus.
        var sentences = Enumerable.Range(0, settings.Sentences).Select(i => corpus.Memory(i).Content!).ToList();
        var bases = new List<float[]>(sentences.Count);
        foreach (var chunk in sentences.Chunk(64))
        {
            bases.AddRange(await transformer.EmbedBatchAsync(chunk));
        }
        await Console.Error.WriteLineAsync(Invariant($"  embedded {bases.Count:N0} sentences in {clock.Elapsed.TotalSeconds:0} s ({bases.Count / clock.Elapsed.TotalSeconds:0} a second)"));

        await using (var engine = EngramEngine.OpenSqlite(folder))
        {
            const int BatchSize = 1_000;
            var batches = (settings.Size + BatchSize - 1) / BatchSize;
            long next = -1;
            var senders = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
            {
                long batch;
                while ((batch = Interlocked.Increment(ref next)) < batches)
                {
                    var first = batch * BatchSize;
                    var last = Math.Min(settings.Size, first + BatchSize);
                    var items = new List<NewMemory?>((int)(last - first));
                    for (var i = first; i < last; i++)
                    {
                        items.Add(corpus.Memory(i));
                    }
                    var results = await engine.Memories.CreateBatchAsync(Bench, items, DuplicatePolicy.Allow);
                    var rows = new List<MemoryVectors>(results.Count);
                    for (var j = 0; j < results.Count; j++)
                    {
                        var i = first + j;
                        var vector = Perturb(bases[(int)(i % bases.Count)], SplitMix.For(settings.Seed + 7, i), settings.Noise);
                        rows.Add(MemoryVectors.Single(new VectorKey(Bench.Tenant, results[j].Id!, 1), transformer.ModelId, vector));
                    }
                    await engine.Store.PutVectorsAsync(rows);
                    if (batch % 50 == 0)
                    {
                        await Console.Error.WriteLineAsync(Invariant($"  stored {last:N0} memories and vectors in {clock.Elapsed.TotalSeconds:0} s"));
                    }
                }
            })).ToArray();
            await Task.WhenAll(senders);
            (await engine.Store.CountVectorRowsAsync()).Should(settings.Size);
        }
        await File.WriteAllTextAsync(marker, expected);
        await Console.Error.WriteLineAsync(Invariant($"  store built in {clock.Elapsed.TotalSeconds:0} s"));
    }

    private static async Task<long> StoredVectorsAsync(string folder)
    {
        await using var store = Core.Storage.Sqlite.SqliteMemoryStore.Open(folder);
        return await store.CountVectorRowsAsync();
    }

    /// <summary>The vector plus Gaussian noise of total norm about <paramref name="noise"/>, normalised.</summary>
    private static float[] Perturb(float[] source, SplitMix random, double noise)
    {
        var sigma = noise / Math.Sqrt(source.Length);
        var vector = new float[source.Length];
        for (var d = 0; d < vector.Length; d++)
        {
            // Box-Muller: one normal deviate per pair of uniforms (1 - u keeps the logarithm finite).
            var u = 1 - random.NextDouble();
            var v = random.NextDouble();
            vector[d] = source[d] + (float)(sigma * Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v));
        }
        var norm = System.Numerics.Tensors.TensorPrimitives.Norm(vector);
        System.Numerics.Tensors.TensorPrimitives.Divide(vector, norm, vector);
        return vector;
    }

    private static void Should(this long actual, long expected)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"expected {expected:N0} stored vectors, found {actual:N0}");
        }
    }

    private static Settings? Parse(string[] args)
    {
        var settings = new Settings();
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--size" when long.TryParse(value, out var size) && size > 0:
                    settings = settings with { Size = size };
                    break;
                case "--runs" when value is not null:
                    settings = settings with { Runs = value.Split(',', StringSplitOptions.RemoveEmptyEntries) };
                    break;
                case "--queries" when int.TryParse(value, out var queries) && queries > 0:
                    settings = settings with { Queries = queries };
                    break;
                case "--sentences" when int.TryParse(value, out var sentences) && sentences > 0:
                    settings = settings with { Sentences = sentences };
                    break;
                case "--noise" when double.TryParse(value, CultureInfo.InvariantCulture, out var noise) && noise >= 0:
                    settings = settings with { Noise = noise };
                    break;
                case "--seed" when int.TryParse(value, out var seed):
                    settings = settings with { Seed = seed };
                    break;
                case "--profile":
                    settings = settings with { Profile = true };
                    continue;
                case "--data-root" when value is not null:
                    settings = settings with { DataRoot = Path.GetFullPath(value) };
                    break;
                default:
                    return null;
            }
            i++;
        }
        return settings;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed record Settings
    {
        public long Size { get; init; } = 1_000_000;

        public string[] Runs { get; init; } = ["glove", "arctic-int8", "arctic-float"];

        public int Queries { get; init; } = 1_000;

        // Enough distinct queries that the search path is fully compiled (tiered JIT) and the store's hot pages
        // are cached before measuring, as in a server that has been running; 50 left the first 1,000 queries
        // measured about twice as slow as the same queries a second time.
        public int WarmUp { get; init; } = 1_000;

        public bool Profile { get; init; }

        public int Sentences { get; init; } = 2_000;

        public double Noise { get; init; } = 0.5;

        public int Seed { get; init; } = 42;

        public string DataRoot { get; init; } = "/var/tmp/engram-bench";
    }
}
