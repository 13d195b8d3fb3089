using System.Globalization;
using Engram.Benchmarks.Store;
using Engram.Core.Common;
using Engram.Core.Search;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// <c>e2e [--sizes 100000,1000000] [--quick]</c>: per corpus size, a fresh store behind an in-process
/// server with default settings (builtin embedder): ingest rate over the batch API (acknowledged and
/// indexed), RAM per memory, search latency in process and over HTTP with 1 and 8 clients, and cold
/// start. Tables to stdout, progress to stderr.
/// </summary>
public static class E2eBenchmark
{
    private static readonly Caller Bench = Caller.Default("bench");

    public static async Task<int> RunAsync(string[] args)
    {
        if (ParseArguments(args) is not { } settings)
        {
            await Console.Error.WriteLineAsync("usage: e2e [--sizes 100000,1000000] [--quick] [--queries N] [--senders N] [--batch N] [--seed N] [--data-root DIR]");
            return 1;
        }
        Console.WriteLine("Engram end-to-end retrieval benchmark");
        foreach (var line in MachineInfo.Describe(settings.DataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine(Invariant($"setup   : server with default settings (builtin embedder, HNSW vector index, snapshots on); ingest by {settings.Senders} senders in batches of {settings.BatchSize:N0}; {settings.Queries:N0} queries, k=10, after {settings.WarmUpQueries} warm-up queries; seed {settings.Seed}"));
        Console.WriteLine();

        var vocabulary = Vocabulary.Load();
        var results = new List<E2eResult>();
        foreach (var size in settings.Sizes)
        {
            await Console.Error.WriteLineAsync(Invariant($"e2e {size:N0} memories"));
            var result = await RunSizeAsync(size, new CorpusGenerator(vocabulary, settings.Seed), settings);
            E2eReport.Print(Console.Out, result);
            Console.WriteLine();
            results.Add(result);
        }
        E2eReport.PrintTargets(Console.Out, results);
        return 0;
    }

    private static async Task<E2eResult> RunSizeAsync(long size, CorpusGenerator corpus, Settings settings)
    {
        using var folder = new BenchDataFolder(settings.DataRoot);
        var queries = QueryGenerator.Generate(corpus, size, settings.Queries, settings.Seed).Select(q => string.Join(' ', q)).ToList();
        var warmUp = QueryGenerator.Generate(corpus, size, settings.WarmUpQueries, settings.Seed + 1).Select(q => string.Join(' ', q)).ToList();

        IngestResult ingest;
        MemorySnapshot empty, indexed, afterSearches;
        var searches = new List<SearchRow>();
        await using (var server = await E2eServer.StartAsync(folder.Path))
        {
            // The first search loads the embedding model and JIT-compiles the search path, so the
            // baseline holds everything an empty server needs and the difference is the corpus.
            await server.SearchHttpAsync(new SearchRequest { Query = "warm up", K = 10 });
            empty = MemorySnapshot.Take();

            ingest = await IngestPhase.RunAsync(server, corpus, size, settings.BatchSize, settings.Senders);
            indexed = MemorySnapshot.Take();
            await Console.Error.WriteLineAsync(Invariant($"  ingested {ingest.Created:N0}: acknowledged {ingest.AcknowledgedPerSecond:N0}/s, indexed {ingest.IndexedPerSecond:N0}/s; {MemorySnapshot.Brief()}"));

            var engine = server.Engine;
            Task InProcess(string q, SearchWeights? weights = null) => engine.Search.SearchAsync(Bench, new SearchRequest { Query = q, K = 10, Weights = weights });
            Task OverHttp(string q) => server.SearchHttpAsync(new SearchRequest { Query = q, K = 10 });
            foreach (var clients in (int[])[1, 8])
            {
                searches.Add(await SearchLatency.RunAsync("in process (SearchService)", clients, queries, warmUp, q => InProcess(q)));
            }
            foreach (var clients in (int[])[1, 8])
            {
                searches.Add(await SearchLatency.RunAsync("HTTP POST /v1/search", clients, queries, warmUp, OverHttp));
            }
            // Where the time goes: each index alone (the other signal's weight 0 skips that index).
            searches.Add(await SearchLatency.RunAsync("in process, lexical only (semantic 0)", 1, queries, warmUp, q => InProcess(q, new SearchWeights { Semantic = 0 })));
            searches.Add(await SearchLatency.RunAsync("in process, semantic only (lexical 0)", 1, queries, warmUp, q => InProcess(q, new SearchWeights { Lexical = 0 })));
            afterSearches = MemorySnapshot.Take();
        }

        var coldStarts = new List<ColdStartRow> { await ColdStart.FullRebuildAsync(folder.Path, queries[0]), await ColdStart.SnapshotLoadAsync(folder.Path, queries[0]) };
        await Console.Error.WriteLineAsync(Invariant($"  cold start: first search after {coldStarts[0].FirstSearch?.TotalSeconds:0.0} s"));
        return new E2eResult(size, ingest, empty, indexed, afterSearches, searches, coldStarts);
    }

    private static Settings? ParseArguments(string[] args)
    {
        var settings = new Settings();
        var sizesGiven = false;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--quick":
                    settings = settings with { Queries = 200, Sizes = sizesGiven ? settings.Sizes : [100_000] };
                    break;
                case "--sizes" when value is not null:
                    var sizes = value.Split(',').Select(s => long.TryParse(s, out var n) && n > 0 ? n : -1).ToArray();
                    if (sizes.Any(s => s < 0))
                    {
                        return null;
                    }
                    settings = settings with { Sizes = sizes };
                    sizesGiven = true;
                    i++;
                    break;
                case "--queries" when int.TryParse(value, out var queries) && queries > 0:
                    settings = settings with { Queries = queries };
                    i++;
                    break;
                case "--senders" when int.TryParse(value, out var senders) && senders > 0:
                    settings = settings with { Senders = senders };
                    i++;
                    break;
                case "--batch" when int.TryParse(value, out var batch) && batch is > 0 and <= 1000:
                    settings = settings with { BatchSize = batch };
                    i++;
                    break;
                case "--seed" when int.TryParse(value, out var seed):
                    settings = settings with { Seed = seed };
                    i++;
                    break;
                case "--data-root" when value is not null:
                    settings = settings with { DataRoot = Path.GetFullPath(value) };
                    i++;
                    break;
                default:
                    return null;
            }
        }
        return settings;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed record Settings
    {
        public long[] Sizes { get; init; } = [100_000, 1_000_000];

        public int Queries { get; init; } = 1_000;

        public int WarmUpQueries { get; init; } = 50;

        public int Senders { get; init; } = 4;

        public int BatchSize { get; init; } = 1_000;

        public int Seed { get; init; } = 42;

        public string DataRoot { get; init; } = BenchDataFolder.DefaultRoot;
    }
}
