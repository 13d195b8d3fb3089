using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Engram.Benchmarks.Store;
using Engram.Core.Memories;
using Engram.Server.Operations;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Benchmarks.Operations;

/// <summary>
/// The memory soak: an in-process server under steady traffic (creates, deletes keeping a fixed window of memories,
/// searches with varied queries, key-value sets over a fixed key space), printing the working set, the GC heap and
/// the request rate every interval. Steady traffic over a steady corpus should give a flat working set after warm-up;
/// growth there is a leak or an unbounded cache. Usage: <c>soak [--minutes 5] [--clients 4] [--window 2000] [--every 15] [--creates 40] [--no-compaction]</c>.
/// Churn (creates and deletes) leaves HNSW tombstones and dead BM25 postings, which the background compaction reclaims
/// (<c>--no-compaction</c> turns it off, to compare); retired document numbers (a small row each) stay until a rebuild.
/// </summary>
public static class SoakBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var minutes = Flag(args, "--minutes", 5.0);
        var clients = (int)Flag(args, "--clients", 4);
        var window = (int)Flag(args, "--window", 2000);
        var every = TimeSpan.FromSeconds(Flag(args, "--every", 15));
        var creates = (int)Flag(args, "--creates", 40); // percent of requests that create (and delete beyond the window); the rest: 2/3 search, 1/3 kv
        var dataRoot = args.SkipWhile(a => a != "--data-root").Skip(1).FirstOrDefault() ?? Path.GetTempPath();

        var compaction = !args.Contains("--no-compaction");
        await using var server = await InProcessServer.StartAsync(dataRoot, o =>
        {
            if (!compaction)
            {
                o.Search.CompactionShare = 1e9;
            }
        });
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        var ids = new ConcurrentQueue<string>();
        long requests = 0, refused = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(minutes));
        var words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
            .Split(' ');

        async Task ClientAsync(int client)
        {
            var random = new Random(client);
            string Sentence(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => words[random.Next(words.Length)])) + " " + random.Next(100_000);
            while (!stop.IsCancellationRequested)
            {
                HttpStatusCode status;
                var pick = random.Next(100);
                if (pick < creates)
                {
                    using var response = await server.Client.PostAsync("/v1/memories", Json($$"""{"content":"{{Sentence(12)}}","user_id":"u{{client}}"}"""));
                    status = response.StatusCode;
                    if (status == HttpStatusCode.Created)
                    {
                        var body = await response.Content.ReadAsStringAsync();
                        ids.Enqueue(body[(body.IndexOf("\"id\":\"", StringComparison.Ordinal) + 6)..].Split('"')[0]);
                    }
                    while (ids.Count > window && ids.TryDequeue(out var old))
                    {
                        using var deleted = await server.Client.DeleteAsync($"/v1/memories/{old}");
                        Interlocked.Increment(ref requests);
                    }
                }
                else if (pick < creates + (100 - creates) * 2 / 3)
                {
                    using var response = await server.Client.PostAsync("/v1/search", Json($$"""{"query":"{{Sentence(3)}}","k":10}"""));
                    status = response.StatusCode;
                    await response.Content.ReadAsByteArrayAsync();
                }
                else
                {
                    using var response = await server.Client.PutAsync($"/v1/kv/soak:{random.Next(1000)}", Json($$"""{"value":"{{Sentence(6)}}"}"""));
                    status = response.StatusCode;
                }
                Interlocked.Increment(ref requests);
                if (status == HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        }

        Console.WriteLine($"# soak: {clients} clients, {minutes} min, window {window} memories ({creates} % create+delete, {(100 - creates) * 2 / 3} % search, the rest kv set), budget {monitor.Budget.Bytes / 1048576.0:0} MB ({monitor.Budget.Source}); compaction {(compaction ? "on" : "off")}; {MachineInfo.BuildConfiguration}");
        Console.WriteLine();
        Console.WriteLine("| elapsed s | working set MB | GC heap MB | gen2 GCs | requests/s | memories | index slots | HNSW nodes | HNSW tombstones | BM25 dead docs | 503s |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var engine = server.Services.GetRequiredService<Engram.Core.EngramEngine>();
        // The window is filled first, so searches always run over the same corpus size.
        var seed = new Random(-1);
        for (var done = 0; done < window; done += 100)
        {
            var batch = Enumerable.Range(0, Math.Min(100, window - done))
                .Select(i => (NewMemory?)new NewMemory { Content = string.Join(' ', Enumerable.Range(0, 12).Select(_ => words[seed.Next(words.Length)])) + " seed " + (done + i), UserId = "seed" })
                .ToList();
            foreach (var id in await server.CreateBatchAsync(batch))
            {
                ids.Enqueue(id);
            }
        }
        var started = Stopwatch.GetTimestamp();
        var workers = Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientAsync(c))).ToArray();
        var samples = new List<(double Seconds, long WorkingSet)>();
        long lastRequests = 0;
        var last = started;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            var now = Stopwatch.GetTimestamp();
            var total = Interlocked.Read(ref requests);
            var rate = (total - lastRequests) / Stopwatch.GetElapsedTime(last, now).TotalSeconds;
            (lastRequests, last) = (total, now);
            var sample = monitor.Sample();
            var seconds = Stopwatch.GetElapsedTime(started, now).TotalSeconds;
            samples.Add((seconds, sample.WorkingSetBytes));
            var tombstones = engine.Index.Tombstones;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {seconds:0} | {sample.WorkingSetBytes / 1048576.0:0.0} | {GC.GetTotalMemory(false) / 1048576.0:0.0} | {GC.CollectionCount(2)} | {rate:0} | {ids.Count} | {engine.Index.Read(i => i.Docs.NextDoc)} | {tombstones.VectorNodes} | {tombstones.Vectors} | {tombstones.Lexical} | {Interlocked.Read(ref refused)} |"));
        }
        await Task.WhenAll(workers);
        var warm = samples.Where(s => s.Seconds >= samples[^1].Seconds / 3).ToList();
        if (warm.Count >= 2)
        {
            var first = warm[0].WorkingSet / 1048576.0;
            var max = warm.Max(s => s.WorkingSet) / 1048576.0;
            var end = warm[^1].WorkingSet / 1048576.0;
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"after warm-up (from {warm[0].Seconds:0} s): working set {first:0.0} MB -> {end:0.0} MB at the end ({(end - first) / first:+0.0%;-0.0%}), peak {max:0.0} MB; {Interlocked.Read(ref requests)} requests"));
        }
        return 0;
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static double Flag(string[] args, string name, double fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
