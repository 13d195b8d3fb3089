using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Benchmarks.Store;
using Engram.Tests.Support;

namespace Engram.Benchmarks.Instances;

/// <summary>
/// Write-to-searchable latency across instances: two Engram servers on one PostgreSQL database (each with
/// its own pool, commit listener, indexes and data folder), a memory posted to one, then the other searched
/// for the word only that memory holds until it finds it. One write at a time, alternating direction, so
/// each figure is one write's way through the database, the notification and the other follower.
/// Usage: <c>instances [--writes 500] [--url postgres://…] [--data-root DIR]</c>. Without <c>--url</c> a
/// throwaway PostgreSQL 15 is started (as the tests do: Debian's postgresql-15, fsync off).
/// </summary>
public static class InstancesBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var writes = (int)Flag(args, "--writes", 500);
        var url = Value(args, "--url");
        var dataRoot = Value(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        if (url is null)
        {
            var server = await PostgresServer.GetAsync();
            url = server.Url(await server.CreateDatabaseAsync());
            Console.WriteLine($"PostgreSQL 15 started on port {server.Port} (fsync off); database {url}");
        }

        await using var a = await InProcessServer.StartAsync(dataRoot, o => o.Store = url);
        await using var b = await InProcessServer.StartAsync(dataRoot, o => o.Store = url);
        var instances = new[] { a, b };
        var random = new Random(15);

        // Warm-up: connections, prepared statements, JIT.
        for (var i = 0; i < 20; i++)
        {
            await MeasureAsync(instances[i % 2], instances[(i + 1) % 2], Token(random));
        }

        var latencies = new List<double>(writes);
        var searches = 0L;
        var total = Stopwatch.StartNew();
        for (var i = 0; i < writes; i++)
        {
            var (ms, polls) = await MeasureAsync(instances[i % 2], instances[(i + 1) % 2], Token(random));
            latencies.Add(ms);
            searches += polls;
        }
        total.Stop();

        latencies.Sort();
        Console.WriteLine();
        Console.WriteLine($"## Write-to-searchable on the other instance (PostgreSQL, 2 instances, {writes} writes, one at a time)");
        Console.WriteLine();
        Console.WriteLine("| p50 | p95 | p99 | max | mean | searches per write | run |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {P(latencies, 0.50):F1} ms | {P(latencies, 0.95):F1} ms | {P(latencies, 0.99):F1} ms | {latencies[^1]:F1} ms | {latencies.Average():F1} ms | {(double)searches / writes:F1} | {total.Elapsed.TotalSeconds:F1} s |"));
        Console.WriteLine();
        Console.WriteLine($"Load average at the end: {LoadAverage()}. Measured from the POST's answer to the answer of the first search on the other instance that found the memory (the search's own time included).");
        return 0;
    }

    /// <summary>Posts a memory holding <paramref name="token"/> to <paramref name="writer"/> and searches <paramref name="reader"/> until it finds it.</summary>
    private static async Task<(double Ms, int Searches)> MeasureAsync(InProcessServer writer, InProcessServer reader, string token)
    {
        var id = await writer.CreateAsync(new Core.Memories.NewMemory { Content = $"instances bench note {token}" });
        var acked = Stopwatch.GetTimestamp();
        for (var searches = 1; ; searches++)
        {
            using var response = await reader.Client.PostAsJsonAsync("/v1/search", new { query = token, k = 5 });
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"POST /v1/search answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
            using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
            if (body.RootElement.GetProperty("results").EnumerateArray().Any(r => r.GetProperty("id").GetString() == id))
            {
                return (Stopwatch.GetElapsedTime(acked).TotalMilliseconds, searches);
            }
            if (Stopwatch.GetElapsedTime(acked) > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"memory {id} ('{token}') not searchable on the other instance after 30 s");
            }
        }
    }

    /// <summary>A word no other memory holds (letters only, so the analyzer keeps it whole).</summary>
    private static string Token(Random random) =>
        string.Create(12, random, (span, r) =>
        {
            span[0] = 'q';
            span[1] = 'z';
            for (var i = 2; i < span.Length; i++)
            {
                span[i] = (char)('a' + r.Next(26));
            }
        });

    private static double P(List<double> sorted, double share) => sorted[Math.Clamp((int)Math.Ceiling(share * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string? Value(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static double Flag(string[] args, string name, double fallback) =>
        Value(args, name) is { } text ? double.Parse(text, CultureInfo.InvariantCulture) : fallback;
}
