using System.Globalization;

namespace Engram.Benchmarks.Retrieval;

/// <summary>The end-to-end results as fixed-width text tables, and the verdict against the targets.</summary>
public static class E2eReport
{
    private const double MaxHttpP95Ms = 10;
    private const double MinIngestPerSecond = 5_000;
    private const double MaxBytesBeyondText = 1_536;

    public static void Print(TextWriter output, E2eResult r)
    {
        var created = r.Ingest.Created;
        output.WriteLine(Invariant($"== {r.Size:N0} memories ({created:N0} created, {r.Ingest.TextUtf16Bytes / 2.0 / created:0} chars of text on average) =="));
        output.WriteLine();
        output.WriteLine($"{"ingest (POST /v1/memories/batch)",-50}  {"memories",10}  {"seconds",8}  {"memories/s",10}");
        output.WriteLine(new string('-', 84));
        output.WriteLine(Invariant($"{"acknowledged (last batch answered)",-50}  {created,10:N0}  {r.Ingest.Acknowledged.TotalSeconds,8:0.0}  {r.Ingest.AcknowledgedPerSecond,10:N0}"));
        output.WriteLine(Invariant($"{"indexed (applied_seq = last_seq, none pending)",-50}  {created,10:N0}  {r.Ingest.Indexed.TotalSeconds,8:0.0}  {r.Ingest.IndexedPerSecond,10:N0}"));
        output.WriteLine(Invariant($"{"HNSW graph built (no staged vectors left)",-50}  {created,10:N0}  {r.Ingest.GraphBuilt.TotalSeconds,8:0.0}  {r.Ingest.GraphBuiltPerSecond,10:N0}"));
        output.WriteLine(Invariant($"(the last GET /v1/stats poll, included in \"indexed\", took {r.Ingest.LastStatsCall.TotalMilliseconds:N0} ms)"));
        output.WriteLine();

        var textPerMemory = (double)r.Ingest.TextUtf16Bytes / created;
        output.WriteLine(Invariant($"RAM after a full compacting GC; text = {textPerMemory:0} B per memory (UTF-16)"));
        output.WriteLine($"{"measure",-44}  {"empty MB",8}  {"loaded MB",9}  {"B/memory",8}  {"B/memory beyond text",20}");
        output.WriteLine(new string('-', 97));
        MemoryRow(output, "managed heap, after ingest", r.Empty.ManagedBytes, r.Indexed.ManagedBytes, created, textPerMemory);
        MemoryRow(output, "working set, after ingest", r.Empty.WorkingSetBytes, r.Indexed.WorkingSetBytes, created, textPerMemory);
        MemoryRow(output, "private bytes, after ingest", r.Empty.PrivateBytes, r.Indexed.PrivateBytes, created, textPerMemory);
        MemoryRow(output, "managed heap, after the searches", r.Empty.ManagedBytes, r.AfterSearches.ManagedBytes, created, textPerMemory);
        MemoryRow(output, "working set, after the searches", r.Empty.WorkingSetBytes, r.AfterSearches.WorkingSetBytes, created, textPerMemory);
        if (r.ColdStarts.FirstOrDefault(c => c.Memory is not null)?.Memory is { } rebuilt)
        {
            MemoryRow(output, "managed heap, after a cold rebuild", r.Empty.ManagedBytes, rebuilt.ManagedBytes, created, textPerMemory);
            MemoryRow(output, "working set, after a cold rebuild", r.Empty.WorkingSetBytes, rebuilt.WorkingSetBytes, created, textPerMemory);
        }
        output.WriteLine();

        output.WriteLine(Invariant($"search, k=10, {r.Searches[0].Latency.Count:N0} queries"));
        output.WriteLine($"{"path",-44}  {"clients",7}  {"queries/s",9}  {"p50 ms",7}  {"p95 ms",7}  {"p99 ms",7}");
        output.WriteLine(new string('-', 89));
        foreach (var s in r.Searches)
        {
            output.WriteLine(Invariant($"{s.Label,-44}  {s.Clients,7}  {s.QueriesPerSecond,9:N0}  {s.Latency.Percentile(50),7:0.00}  {s.Latency.Percentile(95),7:0.00}  {s.Latency.Percentile(99),7:0.00}"));
        }
        output.WriteLine();

        output.WriteLine($"{"cold start (new server on the same folder)",-44}  {"listening s",11}  {"first search s",14}  {"memories/s",10}");
        output.WriteLine(new string('-', 85));
        foreach (var c in r.ColdStarts)
        {
            if (c.FirstSearch is { } first && c.Listening is { } listening)
            {
                output.WriteLine(Invariant($"{c.Mode,-44}  {listening.TotalSeconds,11:0.00}  {first.TotalSeconds,14:0.00}  {c.Documents / first.TotalSeconds,10:N0}"));
            }
            else
            {
                output.WriteLine($"{c.Mode,-44}  {c.Note}");
            }
        }
    }

    public static void PrintTargets(TextWriter output, IReadOnlyList<E2eResult> results)
    {
        output.WriteLine($"{"target",-52}  {"size",10}  {"measured",22}  verdict");
        output.WriteLine(new string('-', 98));
        foreach (var r in results)
        {
            var http = r.Searches.First(s => s.Label.StartsWith("HTTP", StringComparison.Ordinal) && s.Clients == 1);
            var p95 = http.Latency.Percentile(95);
            Target(output, "HTTP search p95, 1 client <= 10 ms", r.Size, Invariant($"{p95:0.00} ms"), p95 <= MaxHttpP95Ms);
            Target(output, "ingest >= 5,000 memories/s (acknowledged)", r.Size, Invariant($"{r.Ingest.AcknowledgedPerSecond:N0}/s"), r.Ingest.AcknowledgedPerSecond >= MinIngestPerSecond);
            Target(output, "ingest >= 5,000 memories/s (indexed)", r.Size, Invariant($"{r.Ingest.IndexedPerSecond:N0}/s"), r.Ingest.IndexedPerSecond >= MinIngestPerSecond);
            var text = (double)r.Ingest.TextUtf16Bytes / r.Ingest.Created;
            var managed = ((double)(r.Indexed.ManagedBytes - r.Empty.ManagedBytes) / r.Ingest.Created) - text;
            var resident = ((double)(r.Indexed.WorkingSetBytes - r.Empty.WorkingSetBytes) / r.Ingest.Created) - text;
            Target(output, "RAM <= 1.5 KB/memory beyond text (managed heap)", r.Size, Invariant($"{managed:N0} B"), managed <= MaxBytesBeyondText);
            Target(output, "RAM <= 1.5 KB/memory beyond text (working set)", r.Size, Invariant($"{resident:N0} B"), resident <= MaxBytesBeyondText);
        }
    }

    private static void Target(TextWriter output, string label, long size, string measured, bool met) =>
        output.WriteLine(Invariant($"{label,-52}  {size,10:N0}  {measured,22}  {(met ? "met" : "MISSED")}"));

    private static void MemoryRow(TextWriter output, string label, long empty, long loaded, long count, double textPerMemory)
    {
        var perMemory = (double)(loaded - empty) / count;
        output.WriteLine(Invariant($"{label,-44}  {empty / 1048576.0,8:0}  {loaded / 1048576.0,9:0}  {perMemory,8:N0}  {perMemory - textPerMemory,20:N0}"));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
