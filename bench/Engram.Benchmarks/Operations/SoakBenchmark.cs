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
/// growth there is a leak or an unbounded cache. Usage: <c>soak [--minutes 5] [--clients 4] [--window 2000] [--every 15]</c>.
/// </summary>
public static class SoakBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var minutes = Flag(args, "--minutes", 5.0);
        var clients = (int)Flag(args, "--clients", 4);
        var window = (int)Flag(args, "--window", 2000);
        var every = TimeSpan.FromSeconds(Flag(args, "--every", 15));
        var dataRoot = args.SkipWhile(a => a != "--data-root").Skip(1).FirstOrDefault() ?? Path.GetTempPath();

        await using var server = await InProcessServer.StartAsync(dataRoot);
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
                var pick = random.Next(10);
                if (pick < 4)
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
                else if (pick < 8)
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

        Console.WriteLine($"# soak: {clients} clients, {minutes} min, window {window} memories (40 % create+delete, 40 % search, 20 % kv set), budget {monitor.Budget.Bytes / 1048576.0:0} MB ({monitor.Budget.Source}); {MachineInfo.BuildConfiguration}");
        Console.WriteLine();
        Console.WriteLine("| elapsed s | working set MB | GC heap MB | gen2 GCs | requests/s | memories | 503s |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
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
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {seconds:0} | {sample.WorkingSetBytes / 1048576.0:0.0} | {GC.GetTotalMemory(false) / 1048576.0:0.0} | {GC.CollectionCount(2)} | {rate:0} | {ids.Count} | {Interlocked.Read(ref refused)} |"));
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
