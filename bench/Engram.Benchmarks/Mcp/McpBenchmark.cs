using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.KeyValue;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;
using ModelContextProtocol.Client;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.Mcp;

/// <summary>
/// <c>mcp [--count N] [--runs N] [--calls N] [--data-root DIR]</c>: (a) the time from starting
/// <c>engram mcp --data DIR</c> to a completed <c>initialize</c> over stdio on a folder of N memories
/// (100k; built once and cached under the data root), median and max of the runs; (b) the first
/// <c>memory_search</c> of a new stdio session (it may wait for the index); (c) tool-call latency p50/p95
/// of memory_search and memory_store over stdio and over Streamable HTTP (<c>engram serve</c> as a child
/// process, stateless <c>/mcp</c>), with the official C# client. Tables to stdout, progress to stderr.
/// </summary>
public static class McpBenchmark
{
    private const int Seed = 20261202;

    public static async Task<int> RunAsync(string[] args)
    {
        var count = Flag(args, "--count", 100_000);
        var runs = Flag(args, "--runs", 10);
        var calls = Flag(args, "--calls", 300);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        Console.WriteLine("Engram MCP benchmark");
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }

        var corpus = new CorpusGenerator(Vocabulary.Load(), Seed);
        var folder = await McpBenchFolder.EnsureAsync(dataRoot, corpus, count, Seed);
        var queries = QueryGenerator.Generate(corpus, count, 200, Seed).Select(q => string.Join(' ', q)).ToList();

        await Console.Error.WriteLineAsync($"(a) {runs} stdio start-ups");
        await StdioHandshake.MeasureAsync(folder); // the first start warms the OS file cache and the dotnet host's caches
        var startups = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            startups.Add((await StdioHandshake.MeasureAsync(folder)).TotalMilliseconds);
        }
        startups.Sort();

        var scratch = McpBenchFolder.CopyToScratch(folder, dataRoot);
        try
        {
            var rows = new List<ToolLatencyRow>();
            TimeSpan? firstSearch = null;
            await Console.Error.WriteLineAsync($"(b, c) stdio: {calls} calls per tool");
            await using (var stdio = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = "engram",
                Command = StdioHandshake.EngramMcp(scratch).FileName,
                Arguments = StdioHandshake.EngramMcp(scratch).ArgumentList.ToList(),
                EnvironmentVariables = new Dictionary<string, string?> { ["ENGRAM_DATA"] = null },
            })))
            {
                if ((await stdio.ListToolsAsync()).Any(t => t.Name == "memory_search"))
                {
                    var clock = Stopwatch.StartNew();
                    await stdio.CallToolAsync("memory_search", new Dictionary<string, object?> { ["query"] = queries[0], ["k"] = 10 });
                    firstSearch = clock.Elapsed;
                }
                rows.AddRange(await ToolLatency.MeasureAsync(stdio, "stdio", queries, calls, warmUp: 30));
            }

            await Console.Error.WriteLineAsync($"(c) Streamable HTTP: {calls} calls per tool");
            await using (var server = await EngramServeProcess.StartAsync(scratch, new Dictionary<string, string>
            {
                // No per-client limits (RateLimitOptions has no Enabled setting to bind: the key this had set did nothing).
                ["Engram__RateLimit__PermitsPerSecond"] = "0",
                ["Engram__RateLimit__MaxConcurrentRequests"] = "0",
            }))
            await using (var http = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(new Uri(server.Url), "/mcp"),
                TransportMode = HttpTransportMode.StreamableHttp,
            })))
            {
                rows.AddRange(await ToolLatency.MeasureAsync(http, $"HTTP ({http.NegotiatedProtocolVersion})", queries, calls, warmUp: 30));
            }

            Console.WriteLine(Invariant($"setup   : {count:N0} memories of the e2e corpus (seed {Seed}) in the data folder, with its index snapshot; engram.dll run by the dotnet host"));
            Console.WriteLine();
            Console.WriteLine(Invariant($"(a) process start to completed initialize over stdio, {runs} runs after one warm-up: median {startups[startups.Count / 2]:F0} ms, max {startups[^1]:F0} ms (min {startups[0]:F0} ms)"));
            Console.WriteLine(Invariant($"(b) first memory_search of a new stdio session (may wait for the index): {(firstSearch is { } first ? first.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) + " ms" : "memory_search not offered by this build")}"));
            Console.WriteLine();
            Console.WriteLine(Invariant($"(c) tool-call latency, one client, sequential, {calls} calls after 30 warm-up calls"));
            Console.WriteLine();
            Console.WriteLine("| transport | tool | calls | p50 ms | p95 ms |");
            Console.WriteLine("|---|---|---:|---:|---:|");
            foreach (var row in rows)
            {
                Console.WriteLine(row.Stats is { } stats
                    ? Invariant($"| {row.Transport} | {row.Tool} | {stats.Count} | {stats.Percentile(50):F2} | {stats.Percentile(95):F2} |")
                    : $"| {row.Transport} | {row.Tool} | - | - | - | {row.Note}");
            }
        }
        finally
        {
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        return 0;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static int Flag(string[] args, string name, int fallback) =>
        int.TryParse(Option(args, name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;
}
