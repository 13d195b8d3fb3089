using System.Diagnostics;
using Engram.Benchmarks.Store;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Engram.Benchmarks.Mcp;

/// <summary>Latencies of one tool over one connection, or why it was not measured.</summary>
public sealed record ToolLatencyRow(string Transport, string Tool, LatencyStats? Stats, string? Note = null);

/// <summary>
/// Tool-call latency through the official C# MCP client, one call at a time: <c>memory_search</c> with
/// queries drawn from the corpus (k=10) and <c>memory_store</c> of new, unique memories. The clock runs
/// around <see cref="McpClient.CallToolAsync"/>, so it counts the client, the transport and the server.
/// </summary>
public static class ToolLatency
{
    public static async Task<List<ToolLatencyRow>> MeasureAsync(McpClient client, string transport, IReadOnlyList<string> queries, int calls, int warmUp)
    {
        var tools = (await client.ListToolsAsync()).Select(t => t.Name).ToHashSet();
        var rows = new List<ToolLatencyRow>();
        rows.Add(tools.Contains("memory_search")
            ? new(transport, "memory_search", await TimeAsync(client, calls, warmUp, i => ("memory_search", new() { ["query"] = queries[i % queries.Count], ["k"] = 10 })))
            : new(transport, "memory_search", null, "not offered by this build"));
        var run = Guid.NewGuid().ToString("N")[..8];
        rows.Add(new(transport, "memory_store", await TimeAsync(client, calls, warmUp, i => ("memory_store", new()
        {
            ["content"] = $"benchmark note {run}-{i}: the {transport} client stored this to time memory_store",
            ["user_id"] = "bench",
            ["tags"] = new[] { "bench" },
        }))));
        return rows;
    }

    private static async Task<LatencyStats> TimeAsync(McpClient client, int calls, int warmUp, Func<int, (string Tool, Dictionary<string, object?> Arguments)> call)
    {
        var ticks = new List<long>(calls);
        for (var i = 0; i < warmUp + calls; i++)
        {
            var (tool, arguments) = call(i);
            var start = Stopwatch.GetTimestamp();
            var result = await client.CallToolAsync(tool, arguments);
            var elapsed = Stopwatch.GetTimestamp() - start;
            if (result.IsError == true)
            {
                throw new InvalidOperationException($"{tool} failed: {result.Content.OfType<TextContentBlock>().FirstOrDefault()?.Text}");
            }
            if (i >= warmUp)
            {
                ticks.Add(elapsed);
            }
        }
        return new LatencyStats(ticks);
    }
}
