using System.Diagnostics;
using Engram.Benchmarks.Store;

namespace Engram.Benchmarks.Retrieval;

/// <summary>One row of the search table: latency percentiles and throughput of a set of queries.</summary>
public sealed record SearchRow(string Label, int Clients, LatencyStats Latency, TimeSpan Elapsed)
{
    public double QueriesPerSecond => Latency.Count / Elapsed.TotalSeconds;
}

/// <summary>
/// Runs every query once, spread over <c>clients</c> concurrent loops that each take the next query,
/// after an untimed warm-up; records each query's latency and the wall time of the whole set.
/// </summary>
public static class SearchLatency
{
    public static async Task<SearchRow> RunAsync(string label, int clients, IReadOnlyList<string> queries, IReadOnlyList<string> warmUp, Func<string, Task> search)
    {
        foreach (var query in warmUp)
        {
            await search(query);
        }
        var ticks = new long[queries.Count];
        var next = -1;
        var clock = Stopwatch.StartNew();
        var loops = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < queries.Count)
            {
                var started = Stopwatch.GetTimestamp();
                await search(queries[i]);
                ticks[i] = Stopwatch.GetTimestamp() - started;
            }
        }));
        await Task.WhenAll(loops);
        clock.Stop();
        var row = new SearchRow(label, clients, new LatencyStats(ticks), clock.Elapsed);
        await Console.Error.WriteLineAsync($"  search {label}, {clients} client(s): {row.QueriesPerSecond:N0} q/s, p95 {row.Latency.Percentile(95):0.00} ms");
        return row;
    }
}
