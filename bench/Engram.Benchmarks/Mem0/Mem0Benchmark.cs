using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Benchmarks.Store;
using Engram.Core.Memories;

namespace Engram.Benchmarks.Mem0;

/// <summary>
/// What the mem0-compatible layer costs a search (issue 17): POST /v3/memories/search/ (mem0's body, filters
/// translated, results reshaped with score_breakdown from Engram's explain) next to POST /v1/search on the same
/// corpus in the same server, one client, sequential, alternating rounds so drift hits both alike. Also a search
/// with an OR filter (checked on a wider candidate list) to show what filters Engram cannot apply itself cost.
/// </summary>
public static class Mem0Benchmark
{
    private static readonly string[] Topics = ["hiking", "coffee", "chess", "python", "jazz", "sailing", "budget", "garden", "flights", "dentist",
        "running", "pasta", "kotlin", "piano", "camping", "tea", "football", "taxes", "yoga", "painting"];

    public static async Task<int> RunAsync(string[] args)
    {
        var memories = Flag(args, "--memories", 10_000);
        var requests = Flag(args, "--requests", 300);
        var rounds = Flag(args, "--rounds", 5);
        var dataRoot = args.SkipWhile(a => a != "--data-root").Skip(1).FirstOrDefault() ?? Path.GetTempPath();

        await using var server = await InProcessServer.StartAsync(dataRoot);
        for (var start = 0; start < memories; start += 1_000)
        {
            var batch = Enumerable.Range(start, Math.Min(1_000, memories - start)).Select(i => (NewMemory?)new NewMemory
            {
                Content = $"note {i}: the user talked about {Topics[i % Topics.Length]} and {Topics[(i * 7 + 3) % Topics.Length]} on day {i % 365}",
                UserId = "user" + (i % 50),
                AgentId = i % 3 == 0 ? "coach" : null,
            }).ToList();
            await server.CreateBatchAsync(batch);
        }
        Console.Error.WriteLine($"{memories} memories stored");

        var engram = new List<long>();
        var mem0 = new List<long>();
        var mem0Or = new List<long>();
        await MeasureAsync(server.Client, requests / 3, null, Engine.Engram); // warm-up
        await MeasureAsync(server.Client, requests / 3, null, Engine.Mem0);
        await MeasureAsync(server.Client, requests / 3, null, Engine.Mem0Or);
        for (var round = 0; round < rounds; round++)
        {
            Console.Error.WriteLine($"round {round + 1}/{rounds}");
            await MeasureAsync(server.Client, requests, engram, Engine.Engram);
            await MeasureAsync(server.Client, requests, mem0, Engine.Mem0);
            await MeasureAsync(server.Client, requests, mem0Or, Engine.Mem0Or);
        }

        Console.WriteLine($"# mem0: search over HTTP, {memories} memories (50 users), top 10 filtered by user, 1 client, {rounds} alternating rounds of {requests} ({MachineInfo.BuildConfiguration})");
        Console.WriteLine();
        Console.WriteLine("| route | requests | p50 ms | p95 ms | p99 ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        Row("POST /v1/search (filters.user_id)", engram);
        Row("POST /v3/memories/search/ (filters.user_id)", mem0);
        Row("POST /v3/memories/search/ (OR of two users)", mem0Or);
        var p50 = new LatencyStats(engram).Percentile(50);
        Console.WriteLine();
        Console.WriteLine($"the compat layer adds {(new LatencyStats(mem0).Percentile(50) - p50) * 1000:F0} µs at p50");
        return 0;
    }

    private enum Engine
    {
        Engram,
        Mem0,
        Mem0Or,
    }

    private static async Task MeasureAsync(HttpClient client, int count, List<long>? ticks, Engine engine)
    {
        for (var i = 0; i < count; i++)
        {
            var query = $"{Topics[i % Topics.Length]} {Topics[(i * 3 + 1) % Topics.Length]}";
            var user = "user" + (i % 50);
            var (path, body) = engine switch
            {
                Engine.Engram => ("/v1/search", (object)new { query, k = 10, filters = new { user_id = user } }),
                Engine.Mem0 => ("/v3/memories/search/", new { query, top_k = 10, filters = new { user_id = user }, output_format = "v1.1" }),
                _ => ("/v3/memories/search/", new { query, top_k = 10, filters = new { OR = new[] { new { user_id = user }, new { user_id = "user" + ((i + 1) % 50) } } } }),
            };
            using var content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
            var start = Stopwatch.GetTimestamp();
            using var response = await client.PostAsync(path, content);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            ticks?.Add(Stopwatch.GetTimestamp() - start);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"POST {path} answered {(int)response.StatusCode}: {Encoding.UTF8.GetString(bytes)}");
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
