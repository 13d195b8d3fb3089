using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using Engram.Benchmarks.Mcp;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.Ui;

/// <summary>
/// <c>ui</c>: the web UI's pages (issue 18) over a store of <c>--count</c> memories (default 100k, the corpus the
/// <c>mcp</c> benchmark caches): sequential GETs of each page as a browser asks for it (Accept: text/html), after
/// warm-up, timed from request to the last byte of the HTML on loopback; then the JavaScript and CSS a browser downloads.
/// <c>--entities N</c> first adds a knowledge graph of N entities (one observation each, two relations each) over REST,
/// since the corpus has none; its rows then include <c>GET /v1/graph</c>, the whole-graph read the overview and the
/// graph page made on every load before session 51.
/// </summary>
internal static partial class UiBenchmark
{
    private const int Seed = 20261202;

    public static async Task<int> RunAsync(string[] args)
    {
        var count = Flag(args, "--count", 100_000);
        var requests = Flag(args, "--requests", 50);
        var entities = Flag(args, "--entities", 0);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        Console.WriteLine("Engram web UI benchmark (ui)");
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        var corpus = new CorpusGenerator(Vocabulary.Load(), Seed);
        var folder = await McpBenchFolder.EnsureAsync(dataRoot, corpus, count, Seed);
        var queries = QueryGenerator.Generate(corpus, count, 50, Seed).Select(q => string.Join(' ', q)).ToList();
        var scratch = McpBenchFolder.CopyToScratch(folder, dataRoot);
        try
        {
            await using var server = await E2eServer.StartAsync(scratch, configure: o => o.Embeddings.Provider = Engram.Core.Embeddings.EmbeddingSettings.Builtin);
            var stats = await server.StatsAsync();
            for (var waited = 0; !stats.CaughtUp && waited < 600; waited++)
            {
                await Task.Delay(500);
                stats = await server.StatsAsync();
            }
            // Caught up is not enough: a server that rebuilt its indexes (the cached snapshot is of an older format) moves
            // the vectors into the HNSW graph in the background for minutes, and searches scan the staged ones exactly
            // meanwhile; the pages are timed on settled indexes.
            for (var waited = 0; StagedVectors(await server.Client.GetStringAsync("/v1/stats")) > 0 && waited < 1800; waited++)
            {
                await Task.Delay(500);
            }
            if (entities > 0)
            {
                await SeedGraphAsync(server.Client, entities);
            }
            var first = JsonDocument.Parse(await server.Client.GetStringAsync("/v1/memories?limit=1")).RootElement.GetProperty("items")[0];
            var id = first.GetProperty("id").GetString()!;
            var user = first.TryGetProperty("user_id", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString()! : "user-1";
            var q = Uri.EscapeDataString(queries[0]);
            Console.WriteLine(Invariant($"store   : {stats.Documents:N0} memories indexed; {requests} sequential GETs per page after 5 warm-up GETs; open mode (loopback, no keys)"));
            Console.WriteLine("| page | p50 ms | p95 ms | max ms | HTML KB |");
            Console.WriteLine("|---|---:|---:|---:|---:|");
            foreach (var (name, path) in new[]
            {
                ("/ui (overview)", "/ui"),
                ("/ui/memories (newest 50)", "/ui/memories"),
                ("/ui/memories?user_id=… (one user)", "/ui/memories?user_id=" + Uri.EscapeDataString(user)),
                ("/ui/memories/{id} (detail + history)", "/ui/memories/" + id),
                ("/ui/search?q=… (k 10, explain)", "/ui/search?q=" + q),
                ("/ui/search?q=…&compare=on (two searches)", "/ui/search?compare=on&b_lexical=1&q=" + q),
                ("/ui/graph", "/ui/graph"),
                ("/ui/kv", "/ui/kv"),
                ("/ui/scopes (exact, from the index)", "/ui/scopes"),
                ("/ui/admin", "/ui/admin"),
                ("GET /v1/graph (the whole graph, JSON)", "/v1/graph"),
            })
            {
                var bytes = 0;
                for (var i = 0; i < 5; i++)
                {
                    bytes = (await GetAsync(server.Client, path)).Length;
                }
                var times = new List<double>();
                for (var i = 0; i < requests; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await GetAsync(server.Client, path.Replace("q=" + q, "q=" + Uri.EscapeDataString(queries[i % queries.Count]), StringComparison.Ordinal));
                    times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
                times.Sort();
                Console.WriteLine(Invariant($"| {name} | {P(times, 0.5):0.0} | {P(times, 0.95):0.0} | {times[^1]:0.0} | {bytes / 1024.0:0.0} |"));
            }

            var page = await GetAsync(server.Client, "/ui");
            long total = 0, gzipped = 0;
            Console.WriteLine();
            Console.WriteLine("| asset | bytes | gzip bytes |");
            Console.WriteLine("|---|---:|---:|");
            foreach (Match asset in AssetPattern().Matches(page))
            {
                var content = await server.Client.GetByteArrayAsync(asset.Value);
                using var buffer = new MemoryStream();
                using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
                {
                    gzip.Write(content);
                }
                total += content.Length;
                gzipped += buffer.Length;
                Console.WriteLine(Invariant($"| {asset.Value} | {content.Length:N0} | {buffer.Length:N0} |"));
            }
            Console.WriteLine(Invariant($"| total JS + CSS | {total:N0} | {gzipped:N0} |"));
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        return 0;
    }

    /// <summary>
    /// <paramref name="count"/> entities (<c>bench-entity-{i}</c>, one observation each) and 2 relations per entity (to
    /// the next one and to the hub of the next ten), in batches of 1,000 over REST.
    /// </summary>
    private static async Task SeedGraphAsync(HttpClient client, int count)
    {
        var started = Stopwatch.GetTimestamp();
        for (var from = 0; from < count; from += 1000)
        {
            var batch = Enumerable.Range(from, Math.Min(1000, count - from))
                .Select(i => new { name = $"bench-entity-{i}", entity_type = i % 10 == 0 ? "hub" : "thing", observations = new[] { $"observation {i} of the bench graph" } });
            await PostAsync(client, "/v1/graph/entities", new { entities = batch });
        }
        for (var from = 0; from < count; from += 500)
        {
            var batch = Enumerable.Range(from, Math.Min(500, count - from)).SelectMany(i => new[]
            {
                new { from = $"bench-entity-{i}", to = $"bench-entity-{(i + 1) % count}", relation_type = "next" },
                new { from = $"bench-entity-{i}", to = $"bench-entity-{(i / 10 * 10 + 10) % count}", relation_type = "part_of" },
            });
            await PostAsync(client, "/v1/graph/relations", new { relations = batch });
        }
        Console.WriteLine(Invariant($"graph   : {count:N0} entities and {2 * count:N0} relations added in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s"));
    }

    private static async Task PostAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task<string> GetAsync(HttpClient client, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/html");
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? text : throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {text[..Math.Min(400, text.Length)]}");
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex("/ui/assets/app\\.[0-9a-f]{16}\\.(css|js)")]
    private static partial Regex AssetPattern();

    private static long StagedVectors(string statsJson) =>
        JsonDocument.Parse(statsJson).RootElement.GetProperty("index").GetProperty("staged_vectors").GetInt64();
}
