using System.Globalization;
using Engram.Benchmarks.Store;

namespace Engram.Benchmarks.Backends;

/// <summary>The backends side by side, one column each, as a fixed-width table.</summary>
public static class BackendsReport
{
    public static void Print(TextWriter output, IReadOnlyList<BackendResult> results, int memories)
    {
        var rows = new List<(string Label, string[] Values)>();
        void Row(string label, Func<BackendResult, string> value) => rows.Add((label, results.Select(value).ToArray()));
        void Section(string title) => rows.Add((title, results.Select(_ => "").ToArray()));

        Section("ingest, fresh store, HTTP (memories/s)");
        for (var i = 0; i < results[0].Ingest.Count; i++)
        {
            var index = i;
            Row("  " + results[0].Ingest[i].Scenario, r => Number(r.Ingest[index].Result.PerSecond, "N0"));
        }
        Section(Invariant($"search at {memories:N0} memories, HTTP POST /v1/search, k=10 (ms)"));
        foreach (var clients in new[] { 1, 8 })
        {
            Row(Invariant($"  {clients} client(s)  p50 / p95 / p99"), r => Latency(r.Search.Rows.Single(s => s.Clients == clients).Latency));
            Row(Invariant($"  {clients} client(s)  queries/s"), r => Number(r.Search.Rows.Single(s => s.Clients == clients).QueriesPerSecond, "N0"));
        }
        Row("  in-process server, start to first search answered (s)", r => Number(r.Search.FirstSearch.TotalSeconds, "0.0"));
        Section(Invariant($"memory at {memories:N0} memories"));
        Row("  in-process server, managed heap after a full GC, minus an empty store's: bytes per memory", r => Number(r.Search.ManagedBytesPerMemory, "N0"));
        Row("  engram serve, RSS once the index is complete: empty store / loaded (MB)",
            r => Invariant($"{r.Visibility.EmptyRssBytes / 1048576.0:N0} / {r.Visibility.RssBytes / 1048576.0:N0}"));
        Row("  engram serve, RSS minus the empty store's: bytes per memory", r => Number((double)(r.Visibility.RssBytes - r.Visibility.EmptyRssBytes) / memories, "N0"));
        Row("  engram serve, start to first search answered (s)", r => Number(r.Visibility.FirstStart.TotalSeconds, "0.0"));
        Row("  engram serve, start to HNSW graph complete (s)", r => Number(r.Visibility.Settled.TotalSeconds, "0.0"));
        Section("write to searchable, engram serve processes (ms)");
        Row("  write acknowledged        p50 / p95 / p99", r => Latency(r.Visibility.WriteAck));
        Row("  same instance, after ack  p50 / p95 / p99", r => Latency(r.Visibility.SameInstance));
        Row("  other instance, after ack p50 / p95 / p99", r => r.Visibility.OtherInstance is { } other ? Latency(other) : "n/a (refused)");
        Row("  other instance            max", r => r.Visibility.OtherInstance is { } other ? Number(other.Percentile(100), "0.0") : "n/a");
        Row("  probes not found in 10 s", r => r.Visibility.Missed.ToString(CultureInfo.InvariantCulture));

        var width = rows.Max(r => r.Label.Length) + 2;
        var column = Math.Max(22, results.Max(r => r.Name.Length) + 2);
        output.WriteLine("".PadRight(width) + string.Concat(results.Select(r => r.Name.PadLeft(column))));
        output.WriteLine(new string('-', width + (column * results.Count)));
        foreach (var (label, values) in rows)
        {
            output.WriteLine(label.PadRight(width) + string.Concat(values.Select(v => v.PadLeft(column))));
        }
        foreach (var refused in results.Where(r => r.Visibility.Refusal is not null))
        {
            output.WriteLine();
            output.WriteLine($"{refused.Name}, second instance on the same store: {refused.Visibility.Refusal}");
        }
    }

    private static string Latency(LatencyStats stats) =>
        Invariant($"{stats.Percentile(50):0.0} / {stats.Percentile(95):0.0} / {stats.Percentile(99):0.0}");

    private static string Number(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
