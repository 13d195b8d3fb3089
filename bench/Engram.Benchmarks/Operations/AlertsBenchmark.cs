using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Engram.Benchmarks.Operations;

/// <summary>
/// <c>alerts</c> (issue 19): the alert detection delay, from a fault injected (the memory budget dropped to 1 MB, so
/// memory_high fires) to the signed alert webhook arriving at a loopback receiver, at the evaluation interval
/// <c>--interval</c> seconds (default 1; the default setting is 30, so expect about half of it); then the memory-event
/// webhook delay, from a POST /v1/memories answered to its memory.created at the receiver. <c>--runs</c> each (default 10).
/// Last, the search.performed overhead: two servers on copies of one store (500 memories), one with the event on (each
/// search offers it to the bounded queue, the service delivers it to the receiver), one without; <c>--searches</c>
/// in-process searches each (default 2000), alternating blocks of 100 so both see the same machine load; latency
/// percentiles and process CPU time per search (which includes the deliveries' work).
/// </summary>
public static class AlertsBenchmark
{
    private const string Secret = "bench-alerts-secret-0123456789";

    public static async Task<int> RunAsync(string[] args)
    {
        var runs = Flag(args, "--runs", 10);
        var interval = Flag(args, "--interval", 1);
        Console.WriteLine("Engram alerts benchmark");
        foreach (var line in MachineInfo.Describe(Path.GetTempPath()))
        {
            Console.WriteLine(line);
        }
        var events = new BlockingCollection<(string Event, string Key, long At)>();
        var port = InProcessServer.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        await using var receiver = builder.Build();
        receiver.MapPost("/hook", async context =>
        {
            var at = Stopwatch.GetTimestamp();
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            var name = context.Request.Headers["X-Engram-Event"].ToString();
            var key = body.RootElement.TryGetProperty("memory_id", out var id) ? id.GetString()!
                : body.RootElement.TryGetProperty("alert", out var alert) ? alert.GetString()! : "";
            events.Add((name, key, at));
            context.Response.StatusCode = 204;
        });
        await receiver.StartAsync();
        var data = Path.Combine(Path.GetTempPath(), "engram-alerts-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        try
        {
            await using var server = await E2eServer.StartAsync(data, configure: o =>
            {
                o.Alerts.WebhookUrl = $"http://127.0.0.1:{port}/hook";
                o.Alerts.WebhookSecret = Secret;
                o.Alerts.EvaluationIntervalSeconds = interval;
                o.Alerts.CooldownMinutes = 0; // every run's fault sends its message
                o.Alerts.MinFreeDiskMB = 1;
                o.Webhooks.Urls = $"http://127.0.0.1:{port}/hook";
                o.Webhooks.Secret = Secret;
                o.Memory.BudgetMB = 1024 * 1024;
                o.Memory.SampleIntervalMilliseconds = 60_000;
            });
            var monitor = server.Services.GetRequiredService<MemoryMonitor>();
            await server.Engine.EnsureIndexedAsync();
            var detection = new List<double>();
            for (var run = 0; run < runs; run++)
            {
                // A fault comes at any moment of the interval, not just after an evaluation (the previous run's resolution).
                await Task.Delay(Random.Shared.Next(0, interval * 1000));
                var started = Stopwatch.GetTimestamp();
                monitor.Budget = new MemoryBudget(1024 * 1024, "bench");
                var fired = Next(events, "alert.firing");
                detection.Add(Stopwatch.GetElapsedTime(started, fired).TotalMilliseconds);
                monitor.Budget = new MemoryBudget(1L << 40, "bench");
                Next(events, "alert.resolved");
            }
            var hooks = new List<double>();
            for (var run = 0; run < runs * 5; run++)
            {
                await Task.Delay(Random.Shared.Next(0, 250)); // any moment of the follower's 250 ms poll
                var started = Stopwatch.GetTimestamp();
                using var response = await server.Client.PostAsJsonAsync("/v1/memories", new { content = $"webhook bench memory {run}" });
                response.EnsureSuccessStatusCode();
                var at = Next(events, "memory.created");
                hooks.Add(Stopwatch.GetElapsedTime(started, at).TotalMilliseconds);
            }
            Console.WriteLine($"alert detection delay (fault → signed webhook received), interval {interval} s, {runs} runs: " +
                $"p50 {Percentile(detection, 0.5):0} ms, p95 {Percentile(detection, 0.95):0} ms, max {detection.Max():0} ms");
            Console.WriteLine($"memory.created webhook (POST /v1/memories sent → webhook received), {hooks.Count} writes: " +
                $"p50 {Percentile(hooks, 0.5):0.0} ms, p95 {Percentile(hooks, 0.95):0.0} ms");
        }
        finally
        {
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        await SearchOverheadAsync(port, Flag(args, "--searches", 2000), events);
        await receiver.StopAsync();
        return 0;
    }

    private static async Task SearchOverheadAsync(int port, int searches, BlockingCollection<(string Event, string Key, long At)> events)
    {
        var roots = new List<string>();
        var servers = new List<E2eServer>();
        try
        {
            foreach (var on in new[] { false, true })
            {
                var root = Path.Combine(Path.GetTempPath(), "engram-search-hook-bench-" + Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(root);
                roots.Add(root);
                servers.Add(await E2eServer.StartAsync(root, configure: o =>
                {
                    o.Webhooks.Urls = $"http://127.0.0.1:{port}/hook";
                    o.Webhooks.Secret = Secret;
                    o.Webhooks.Events = on ? "search.performed" : "memory.created";
                    o.Memory.BudgetMB = 1024 * 1024;
                }));
            }
            foreach (var server in servers)
            {
                await server.Engine.EnsureIndexedAsync();
                for (var i = 0; i < 500; i++)
                {
                    await server.Engine.Memories.CreateAsync(Engram.Core.Common.Caller.Default("bench"),
                        new Engram.Core.Memories.NewMemory { Content = $"bench memory {i} about topic {i % 37} and detail {i * 7919 % 101}" });
                }
            }
            var latencies = new[] { new List<double>(), new List<double>() };
            var cpu = new[] { TimeSpan.Zero, TimeSpan.Zero };
            var caller = Engram.Core.Common.Caller.Default("bench");
            for (var block = 0; block < searches / 100 + 2; block++)
            {
                var which = block % 2;
                var server = servers[which];
                var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                for (var i = 0; i < 100; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await server.Engine.Search.SearchAsync(caller, new Engram.Core.Search.SearchRequest { Query = $"topic {(block * 100 + i) % 37} detail", K = 10 });
                    if (block >= 2)
                    {
                        latencies[which].Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                    }
                }
                if (which == 1)
                {
                    // The deliveries of this block finish inside its CPU time.
                    for (var deadline = DateTime.UtcNow.AddSeconds(30); events.Count < 100 && DateTime.UtcNow < deadline;)
                    {
                        await Task.Delay(5);
                    }
                    while (events.TryTake(out _))
                    {
                    }
                }
                if (block >= 2)
                {
                    cpu[which] += Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
                }
            }
            for (var which = 0; which < 2; which++)
            {
                var list = latencies[which];
                Console.WriteLine($"search, search.performed {(which == 1 ? "on " : "off")}: {list.Count} searches, p50 {Percentile(list, 0.5):0} µs, " +
                    $"p95 {Percentile(list, 0.95):0} µs, mean {list.Average():0} µs, CPU {cpu[which].TotalMicroseconds / list.Count:0} µs per search");
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
            foreach (var root in roots)
            {
                try
                {
                    Directory.Delete(root, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private static long Next(BlockingCollection<(string Event, string Key, long At)> events, string name)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (true)
        {
            var item = events.Take(timeout.Token);
            if (item.Event == name)
            {
                return item.At;
            }
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static int Flag(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
