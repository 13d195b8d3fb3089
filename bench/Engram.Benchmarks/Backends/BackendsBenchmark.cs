using System.Globalization;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;

namespace Engram.Benchmarks.Backends;

/// <summary>
/// <c>backends [--memories N] [--only sqlite|postgres] …</c>: SQLite and PostgreSQL side by side on this machine:
/// ingest over HTTP (single memories by 1 and several clients, batches of 100 and 1000), search latency over
/// HTTP at <c>N</c> memories (k=10, GloVe builtin embedder), the server's memory per memory, and how soon a
/// write is searchable on the instance that took it and on another instance on the same database. PostgreSQL
/// runs from Debian's package in a cluster kept under the data root. Table to stdout, progress to stderr.
/// </summary>
public static class BackendsBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (ParseArguments(args) is not { } settings)
        {
            await Console.Error.WriteLineAsync(
                "usage: backends [--memories N] [--clients N] [--duration S] [--queries N] [--probes N] [--only sqlite|postgres] [--seed N] [--data-root DIR]");
            return 1;
        }
        Directory.CreateDirectory(settings.DataRoot);
        Console.WriteLine("Engram backends benchmark: SQLite and PostgreSQL");
        foreach (var line in MachineInfo.Describe(settings.DataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine($"postgres: {BenchPostgres.Settings}");
        Console.WriteLine(Invariant($"setup   : in-process server for ingest and search, engram serve processes for write-to-searchable; GloVe builtin embedder; ingest {settings.Duration.TotalSeconds:0.#} s per row after {settings.WarmUp.TotalSeconds:0.#} s warm-up; {settings.Queries:N0} queries after {settings.WarmUpQueries} warm-up; {settings.Probes} probes per row; seed {settings.Seed}"));
        Console.WriteLine();

        var vocabulary = Vocabulary.Load();
        var corpus = new CorpusGenerator(vocabulary, settings.Seed);
        var queries = QueryGenerator.Generate(corpus, settings.Memories, settings.Queries, settings.Seed).Select(q => string.Join(' ', q)).ToList();
        var warmUp = QueryGenerator.Generate(corpus, settings.Memories, settings.WarmUpQueries, settings.Seed + 1).Select(q => string.Join(' ', q)).ToList();

        using var postgres = settings.Backends.Contains("postgres") ? await BenchPostgres.StartAsync(settings.DataRoot) : null;
        var backends = new List<BenchBackend>();
        if (settings.Backends.Contains("sqlite"))
        {
            backends.Add(new SqliteBenchBackend(settings.DataRoot));
        }
        if (postgres is not null)
        {
            backends.Add(new PostgresBenchBackend(postgres, settings.DataRoot));
        }

        var results = new List<BackendResult>();
        foreach (var backend in backends)
        {
            await Console.Error.WriteLineAsync($"{backend.Name}: ingest");
            var ingest = new List<(string, Throughput)>
            {
                ("POST /v1/memories, 1 client", await BackendIngest.SingleAsync(backend, 1, settings)),
                (Invariant($"POST /v1/memories, {settings.Clients} clients"), await BackendIngest.SingleAsync(backend, settings.Clients, settings)),
                ("POST /v1/memories/batch, 100 items, 1 client", await BackendIngest.BatchAsync(backend, 100, settings)),
                ("POST /v1/memories/batch, 1000 items, 1 client", await BackendIngest.BatchAsync(backend, 1000, settings)),
            };
            foreach (var (scenario, result) in ingest)
            {
                await Console.Error.WriteLineAsync(Invariant($"  {scenario}: {result.PerSecond:N0}/s"));
            }
            await using var loaded = await backend.LoadedAsync(corpus, settings.Memories, settings.Seed);
            await Console.Error.WriteLineAsync($"{backend.Name}: search at {settings.Memories:N0}");
            var search = await BackendSearch.RunAsync(backend, loaded, queries, warmUp);
            await Console.Error.WriteLineAsync($"{backend.Name}: write to searchable");
            var visibility = await BackendVisibility.RunAsync(backend, loaded, settings.Probes, settings.Seed);
            results.Add(new BackendResult(backend.Name, ingest, search, visibility));
        }

        BackendsReport.Print(Console.Out, results, settings.Memories);
        Console.WriteLine();
        Console.WriteLine($"load after the run: {string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3])} (1/5/15 min)");
        return 0;
    }

    private static BackendsSettings? ParseArguments(string[] args)
    {
        var settings = new BackendsSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--memories" when int.TryParse(value, out var memories) && memories >= 1000:
                    settings = settings with { Memories = memories };
                    break;
                case "--clients" when int.TryParse(value, out var clients) && clients > 0:
                    settings = settings with { Clients = clients };
                    break;
                case "--duration" when double.TryParse(value, CultureInfo.InvariantCulture, out var seconds) && seconds > 0:
                    settings = settings with { Duration = TimeSpan.FromSeconds(seconds) };
                    break;
                case "--queries" when int.TryParse(value, out var queries) && queries > 0:
                    settings = settings with { Queries = queries };
                    break;
                case "--probes" when int.TryParse(value, out var probes) && probes > 0:
                    settings = settings with { Probes = probes };
                    break;
                case "--only" when value is "sqlite" or "postgres":
                    settings = settings with { Backends = [value] };
                    break;
                case "--seed" when int.TryParse(value, out var seed):
                    settings = settings with { Seed = seed };
                    break;
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
}
