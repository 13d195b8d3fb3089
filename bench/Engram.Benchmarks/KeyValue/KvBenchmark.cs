using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Benchmarks.Store;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// <c>kv</c>: SET/GET ops/s of Engram's key-value state in process (KvService) and over HTTP
/// (the real <c>engram serve</c> as a child process, PUT/GET /v1/kv/{key} driven by wrk as Redis is
/// by redis-benchmark: both servers in their own processes, both load generators native)
/// with 1, 8 and 32 concurrent clients, for both key-value durabilities (full: fsync'd commits;
/// relaxed: commits reach the OS, survive a process crash), beside redis-server over loopback with
/// the same value size and key space, in one run on one machine.
/// Options: --duration S (per Engram cell, default 3), --requests N (per redis-benchmark run,
/// default 100000), --data-root DIR, --no-redis-aof (skip the appendfsync-always Redis row),
/// --clients 1,8,32 (which concurrency levels), --only redis|engram (one side, for iterating),
/// --repeat N (whole passes, Redis and Engram alternating; each cell reports the median and range).
/// </summary>
public static class KvBenchmark
{
    private const int ValueBytes = 100;
    private const int KeySpace = 10_000;

    /// <summary>
    /// Load before the first cell of each store, so the cells measure steady state: .NET's tiered
    /// JIT keeps recompiling hot paths for 15-20 s of load (its thread used ~20% of a core 10 s in),
    /// which a 1 s warm-up per cell did not cover. Redis has nothing to warm.
    /// </summary>
    private static readonly TimeSpan JitWarmup = TimeSpan.FromSeconds(15);

    public static async Task<int> RunAsync(string[] args)
    {
        var duration = TimeSpan.FromSeconds(double.Parse(Option(args, "--duration") ?? "3", CultureInfo.InvariantCulture));
        var requests = int.Parse(Option(args, "--requests") ?? "100000", CultureInfo.InvariantCulture);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        var withAof = !args.Contains("--no-redis-aof");
        var clientCounts = (Option(args, "--clients") ?? "1,8,32").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
        var only = Option(args, "--only");
        var runRedis = only is null or "redis";
        var runEngram = only is null or "engram";
        var repeat = int.Parse(Option(args, "--repeat") ?? "1", CultureInfo.InvariantCulture);
        Directory.CreateDirectory(dataRoot);
        await RedisBaseline.EnsureInstalledAsync();

        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine($"value {ValueBytes} bytes, {KeySpace} keys, {duration.TotalSeconds:0.#} s per Engram cell, {requests} requests per redis-benchmark run, {repeat} pass(es)");
        Console.WriteLine();

        var rows = new List<(string System, string Op, int Clients, double OpsPerSecond)>();
        for (var pass = 1; pass <= repeat; pass++)
        {
            await RunPassAsync(rows, clientCounts, duration, requests, dataRoot, runRedis && withAof, runRedis, runEngram);
            Console.Error.WriteLine($"pass {pass} of {repeat} done");
        }
        Print(rows);
        return 0;
    }

    private static async Task RunPassAsync(List<(string System, string Op, int Clients, double OpsPerSecond)> rows, int[] clientCounts, TimeSpan duration,
        int requests, string dataRoot, bool withAof, bool runRedis, bool runEngram)
    {
        if (runRedis)
        {
            await using var redis = await RedisBaseline.StartAsync(fsyncAlways: false, dataRoot);
            foreach (var clients in clientCounts)
            {
                foreach (var (op, rps) in await redis.RunAsync(clients, requests, ValueBytes, KeySpace))
                {
                    rows.Add(("redis (no persistence)", op.ToUpperInvariant(), clients, rps));
                }
            }
        }
        if (withAof)
        {
            await using var redis = await RedisBaseline.StartAsync(fsyncAlways: true, dataRoot);
            foreach (var clients in clientCounts)
            {
                foreach (var (op, rps) in await redis.RunAsync(clients, requests / 4, ValueBytes, KeySpace))
                {
                    rows.Add(("redis (aof, fsync always)", op.ToUpperInvariant(), clients, rps));
                }
            }
        }

        if (runEngram)
        {
            await MeasureEngramAsync(rows, clientCounts, duration, dataRoot);
        }
    }

    private static async Task MeasureEngramAsync(List<(string System, string Op, int Clients, double OpsPerSecond)> rows, int[] clientCounts, TimeSpan duration, string dataRoot)
    {
        var value = JsonDocument.Parse("\"" + new string('x', ValueBytes - 2) + "\"").RootElement.Clone();
        var caller = Caller.Default("bench");
        using var wrk = await WrkDriver.CreateAsync(ValueBytes, KeySpace);
        foreach (var durability in new[] { WriteDurability.Full, WriteDurability.Relaxed })
        {
            var label = durability == WriteDurability.Full ? "full" : "relaxed";
            // GETs never wait for a commit, so they are measured once, on the default (full) store.
            var measureGets = durability == WriteDurability.Full;
            using (var folder = new BenchDataFolder(dataRoot))
            {
                await using var engine = EngramEngine.OpenSqlite(folder.Path, keyValue: new KvOptions { Durability = durability });
                var kv = engine.KeyValue;
                await Populate(i => kv.SetAsync(caller, Key(i), value, 0));
                await Loop(32, JitWarmup, key => kv.SetAsync(caller, key, value, 0));
                foreach (var clients in clientCounts)
                {
                    rows.Add(($"engram in-process ({label})", "SET", clients, await MeasureAsync(clients, duration, key => kv.SetAsync(caller, key, value, 0))));
                    if (measureGets)
                    {
                        rows.Add(("engram in-process", "GET", clients, await MeasureAsync(clients, duration, key => kv.GetAsync(caller, key))));
                    }
                }
            }
            using (var folder = new BenchDataFolder(dataRoot))
            {
                await using var server = await EngramServeProcess.StartAsync(folder.Path,
                    new Dictionary<string, string>
                    {
                        ["Engram__KeyValue__Durability"] = durability.ToString(),
                        // wrk is one client at full speed: the per-client limits would measure themselves (429), not the store.
                        ["Engram__RateLimit__PermitsPerSecond"] = "0",
                        ["Engram__RateLimit__MaxConcurrentRequests"] = "0",
                    });
                var url = server.Url;
                using (var client = new HttpClient { BaseAddress = new Uri(url) })
                {
                    var body = Encoding.UTF8.GetBytes($$"""{"value":{{value.GetRawText()}},"ttl_seconds":0}""");
                    await Populate(i => PutAsync(client, Key(i), body));
                }
                await wrk.RunAsync(url, "SET", 32, JitWarmup);
                await wrk.RunAsync(url, "GET", 32, JitWarmup / 2);
                foreach (var clients in clientCounts)
                {
                    await wrk.RunAsync(url, "SET", clients, TimeSpan.FromSeconds(1));
                    rows.Add(($"engram HTTP ({label})", "SET", clients, await wrk.RunAsync(url, "SET", clients, duration)));
                    if (measureGets)
                    {
                        await wrk.RunAsync(url, "GET", clients, TimeSpan.FromSeconds(1));
                        rows.Add(("engram HTTP", "GET", clients, await wrk.RunAsync(url, "GET", clients, duration)));
                    }
                }
            }
        }
    }

    private static string Key(int i) => "key:" + i.ToString("D6", CultureInfo.InvariantCulture);

    private static async Task Populate(Func<int, Task> set)
    {
        // GETs must hit: write every key once, 32 at a time.
        for (var i = 0; i < KeySpace; i += 32)
        {
            await Task.WhenAll(Enumerable.Range(i, Math.Min(32, KeySpace - i)).Select(set));
        }
    }

    private static async Task PutAsync(HttpClient client, string key, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await client.PutAsync("/v1/kv/" + key, content);
        if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.Created))
        {
            throw new InvalidOperationException($"PUT answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>Warms up for a second, then counts completed operations of <paramref name="clients"/> loops for <paramref name="duration"/>.</summary>
    private static async Task<double> MeasureAsync(int clients, TimeSpan duration, Func<string, Task> operation)
    {
        await Loop(clients, TimeSpan.FromSeconds(1), operation);
        var stopwatch = Stopwatch.StartNew();
        var done = await Loop(clients, duration, operation);
        return done / stopwatch.Elapsed.TotalSeconds;
    }

    private static async Task<long> Loop(int clients, TimeSpan duration, Func<string, Task> operation)
    {
        long done = 0;
        var stopwatch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var random = new Random(c);
            while (stopwatch.Elapsed < duration)
            {
                await operation(Key(random.Next(KeySpace)));
                Interlocked.Increment(ref done);
            }
        })));
        return done;
    }

    private static void Print(List<(string System, string Op, int Clients, double OpsPerSecond)> rows)
    {
        static double Median(List<double> values)
        {
            values.Sort();
            return values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2;
        }
        var cells = rows.GroupBy(r => (r.System, r.Op, r.Clients))
            .Select(g => (g.Key.System, g.Key.Op, g.Key.Clients, Median: Median([.. g.Select(r => r.OpsPerSecond)]),
                Min: g.Min(r => r.OpsPerSecond), Max: g.Max(r => r.OpsPerSecond)))
            .ToList();
        string Ratio(string op, int clients, double opsPerSecond) =>
            cells.FirstOrDefault(c => c.System == "redis (no persistence)" && c.Op == op && c.Clients == clients) is { Median: > 0 } redis
                ? (opsPerSecond / redis.Median).ToString("0.00", CultureInfo.InvariantCulture)
                : "-";
        Console.WriteLine("| system | op | clients | ops/s (median) | range | × redis (no persistence) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        foreach (var cell in cells.OrderBy(c => c.Op).ThenBy(c => c.Clients).ThenBy(c => c.System, StringComparer.Ordinal))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {cell.System} | {cell.Op} | {cell.Clients} | {cell.Median:N0} | {cell.Min:N0}–{cell.Max:N0} | {Ratio(cell.Op, cell.Clients, cell.Median)} |"));
        }
        Console.WriteLine();
        Console.WriteLine("Redis without persistence acknowledges from memory. Engram (full) acknowledges after an fsync'd SQLite commit " +
            "(WAL, group commit, the WAL fdatasync'd before the answer): the 'aof, fsync always' row is Redis made durable the same way. Engram (relaxed) " +
            "acknowledges once the commit reaches the OS (no fsync wait): a process crash loses nothing, a power loss may lose the last writes.");
        Console.WriteLine("Target: Engram over HTTP >= 0.3x Redis at 32 clients.");
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
