using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Engram.Benchmarks.Store;
using Engram.Core.Memories;
using Engram.Core.Security;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Benchmarks.Security;

/// <summary>
/// What authentication costs a request: GET /v1/memories/{id} over real HTTP, one client, sequential,
/// against two servers in this process: one open (no keys) and one with an API key sent as a Bearer
/// header (the gate hashes it, finds it in its cache, checks the role and sets the caller). Rounds
/// alternate between the two so that drift on a shared machine hits both alike. Also: a bad key's 401.
/// </summary>
public static class AuthCostBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var requests = Flag(args, "--requests", 2_000);
        var rounds = Flag(args, "--rounds", 10);
        var dataRoot = args.SkipWhile(a => a != "--data-root").Skip(1).FirstOrDefault() ?? Path.GetTempPath();

        await using var open = await InProcessServer.StartAsync(dataRoot);
        await using var keyed = await InProcessServer.StartAsync(dataRoot);
        var created = await keyed.Services.GetRequiredService<ApiKeyService>().CreateAsync(new NewApiKey("bench", Role.Write, null, "bench", null), "bench");
        keyed.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.Secret);
        var memory = new NewMemory { Content = "the staging database password rotates on fridays", UserId = "bench" };
        var openId = await open.CreateAsync(memory);
        var keyedId = await keyed.CreateAsync(memory);
        using var badKey = new HttpClient { BaseAddress = keyed.Client.BaseAddress };
        badKey.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "egm_" + new string('x', 43));

        var openTicks = new List<long>(requests * rounds);
        var keyedTicks = new List<long>(requests * rounds);
        var deniedTicks = new List<long>(requests * rounds / 4);
        await MeasureAsync(open.Client, openId, requests, [], HttpStatusCode.OK); // warm-up: JIT, connections, caches
        await MeasureAsync(keyed.Client, keyedId, requests, [], HttpStatusCode.OK);
        await MeasureAsync(badKey, keyedId, requests / 4, [], HttpStatusCode.Unauthorized);
        for (var round = 0; round < rounds; round++)
        {
            Console.Error.WriteLine($"round {round + 1}/{rounds}");
            await MeasureAsync(open.Client, openId, requests, openTicks, HttpStatusCode.OK);
            await MeasureAsync(keyed.Client, keyedId, requests, keyedTicks, HttpStatusCode.OK);
            await MeasureAsync(badKey, keyedId, requests / 4, deniedTicks, HttpStatusCode.Unauthorized);
        }

        Console.WriteLine($"# auth: GET /v1/memories/{{id}} over HTTP, 1 client, {rounds} alternating rounds of {requests} requests ({MachineInfo.BuildConfiguration})");
        Console.WriteLine();
        Console.WriteLine("| server | requests | p50 ms | p95 ms | p99 ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        Row("open (no keys)", openTicks);
        Row("API key (Bearer)", keyedTicks);
        Row("bad key (401)", deniedTicks);
        var openP50 = new LatencyStats(openTicks).Percentile(50);
        var keyedP50 = new LatencyStats(keyedTicks).Percentile(50);
        Console.WriteLine();
        Console.WriteLine($"authentication adds {(keyedP50 - openP50) * 1000:F1} µs at p50 ({keyedP50 / openP50:F2}x)");
        return 0;
    }

    private static async Task MeasureAsync(HttpClient client, string id, int count, List<long> ticks, HttpStatusCode expected)
    {
        var path = $"/v1/memories/{id}";
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync(path);
            await response.Content.ReadAsByteArrayAsync();
            ticks.Add(Stopwatch.GetTimestamp() - start);
            if (response.StatusCode != expected)
            {
                throw new InvalidOperationException($"GET {path} answered {(int)response.StatusCode}, expected {(int)expected}");
            }
        }
    }

    private static void Row(string name, List<long> ticks)
    {
        var stats = new LatencyStats(ticks);
        Console.WriteLine($"| {name} | {stats.Count} | {stats.Percentile(50):F3} | {stats.Percentile(95):F3} | {stats.Percentile(99):F3} |");
    }

    private static int Flag(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], out var value) && value > 0 ? value : fallback;
    }
}
