using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Engram.Core.Telemetry;

/// <summary>
/// Engram's event instruments (counters and histograms), created once on <see cref="EngramMeter.Meter"/>.
/// Recording is an <c>Add</c>/<c>Record</c> with at most one tag: no allocation on the request path, and
/// nothing at all when no exporter listens. The gauges (counts, sizes, lag) live with the server, which
/// reads them from state it already keeps (Engram.Server/Operations/EngramGauges.cs).
/// </summary>
public static class EngramInstruments
{
    /// <summary>Latency buckets in seconds, from a cached lexical hit to a slow remote embedder.</summary>
    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Searches run, by kind: hybrid, semantic, lexical (memories, from the request's weights) or graph.</summary>
    public static readonly Counter<long> SearchRequests = EngramMeter.Meter.CreateCounter<long>(
        "engram_search_requests_total", description: "Searches run, by kind (hybrid, semantic, lexical, graph).");

    /// <summary>Searches that failed on the server's side (not a refused request: those are the caller's errors).</summary>
    public static readonly Counter<long> SearchErrors = EngramMeter.Meter.CreateCounter<long>(
        "engram_search_errors_total", description: "Searches that failed on the server's side, by kind.");

    public static readonly Histogram<double> SearchDuration = EngramMeter.Meter.CreateHistogram(
        "engram_search_duration_seconds", unit: null, description: "Time to answer a search, by kind.", tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    /// <summary>Calls to the embedding model, by op: documents (a batch of memories) or query.</summary>
    public static readonly Histogram<double> EmbeddingDuration = EngramMeter.Meter.CreateHistogram(
        "engram_embedding_duration_seconds", unit: null, description: "Time of one call to the embedding model, by op (documents: a batch; query).", tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    public static readonly Counter<long> EmbeddingFailures = EngramMeter.Meter.CreateCounter<long>(
        "engram_embedding_failures_total", description: "Calls to the embedding model that failed, by op.");

    /// <summary>Index compactions that reclaimed removed entries, by index: vectors (HNSW rebuilt from live rows) or lexical (BM25 dead postings dropped).</summary>
    public static readonly Counter<long> IndexCompactions = EngramMeter.Meter.CreateCounter<long>(
        "engram_index_compactions_total", description: "Index compactions that reclaimed removed entries, by index (vectors, lexical).");

    public const string Hybrid = "hybrid";
    public const string Semantic = "semantic";
    public const string Lexical = "lexical";
    public const string Graph = "graph";
    public const string Vectors = "vectors";
    public const string Documents = "documents";
    public const string Query = "query";

    /// <summary>Records one search of <paramref name="kind"/> that started at <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static void SearchDone(string kind, long started, bool failed)
    {
        var tag = new KeyValuePair<string, object?>("kind", kind);
        SearchRequests.Add(1, tag);
        if (failed)
        {
            SearchErrors.Add(1, tag);
        }
        SearchDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tag);
    }

    /// <summary>Records one call to the embedding model.</summary>
    public static void EmbeddingDone(string op, long started, bool failed)
    {
        var tag = new KeyValuePair<string, object?>("op", op);
        EmbeddingDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tag);
        if (failed)
        {
            EmbeddingFailures.Add(1, tag);
        }
    }

    /// <summary>Whether <paramref name="error"/> is the server's failure (counted), not the caller's (refused request) or a cancellation.</summary>
    public static bool IsServerFailure(Exception error) => error is not (Common.EngramException or OperationCanceledException);
}
