using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Engram.Core;
using Engram.Core.Storage;
using Engram.Core.Telemetry;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Operations;

/// <summary>
/// Engram's gauges: counts, sizes and positions read on scrape from what the server already keeps,
/// never from a scan. Counts of memories, keys and graph items come from the writer's counters
/// (<see cref="IMemoryStore.ReadCountsAsync"/>, one read of a small table) and are cached here: a scrape
/// returns the cached figures and, when they are older than <see cref="MaxAge"/>, starts one refresh in
/// the background, so a scrape never waits on the store and a server nobody scrapes reads nothing.
/// </summary>
/// <remarks>
/// The instruments hang off the process-wide <see cref="EngramMeter.Meter"/>, so they are created once
/// (statically) and sum over every server open in the process: one in production; tests run several.
/// </remarks>
internal sealed partial class EngramGauges : IDisposable
{
    /// <summary>How old cached counts may be before a scrape asks for fresh ones.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    private static readonly ConcurrentDictionary<EngramGauges, byte> Open = new();

    private readonly EngramEngine _engine;
    private readonly ILogger _log;
    private StoreCounts _counts = StoreCounts.Empty;
    private long _refreshedAt = long.MinValue;
    private int _refreshing;

    static EngramGauges()
    {
        var meter = EngramMeter.Meter;
        var version = meter.Version ?? "0.0.0";
        meter.CreateObservableGauge("engram_build_info", () => new Measurement<long>(1, new KeyValuePair<string, object?>("version", version)),
            description: "Always 1; the version label says which Engram runs.");
        meter.CreateObservableGauge("engram_memories", Memories,
            description: "Memories stored, by tier and type (the writer's counts; rows past their TTL count until the sweeper removes them).");
        meter.CreateObservableGauge("engram_kv_keys", () => Sum(g => g._counts.KvKeys), description: "Key-value keys stored.");
        meter.CreateObservableCounter("engram_kv_journal_sets_total", () => Sum(g => g._engine.Store is IKvJournalFigures f ? f.JournaledSets : 0),
            description: "Relaxed SETs acknowledged through the key-value journal (SQLite) instead of a writer transaction; the rest of the SETs went through the writer.");
        meter.CreateObservableCounter("engram_kv_journal_increments_total", () => Sum(g => g._engine.Store is IKvJournalFigures f ? f.JournaledIncrements : 0),
            description: "Relaxed increments (INCR, INCRBY, DECR, DECRBY; REST and MCP increments) acknowledged through the key-value journal (SQLite) instead of a writer transaction.");
        meter.CreateObservableCounter("engram_kv_journal_deletes_total", () => Sum(g => g._engine.Store is IKvJournalFigures f ? f.JournaledDeletes : 0),
            description: "Relaxed deletes of live keys (DEL, UNLINK, GETDEL, an EXPIRE in the past; REST and MCP deletes) acknowledged through the key-value journal (SQLite) instead of a writer transaction.");
        meter.CreateObservableCounter("engram_kv_journal_expiry_changes_total", () => Sum(g => g._engine.Store is IKvJournalFigures f ? f.JournaledExpiryChanges : 0),
            description: "Relaxed expiry changes (EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, GETEX with an expiry; REST and MCP TTL changes) acknowledged through the key-value journal (SQLite) instead of a writer transaction.");
        meter.CreateObservableGauge("engram_kv_journal_pending", () => Sum(g => g._engine.Store is IKvJournalFigures f ? f.JournalPending : 0),
            description: "Relaxed SETs, increments, deletes and expiry changes acknowledged through the key-value journal and not yet applied to the database (the writer applies them within milliseconds).");
        meter.CreateObservableGauge("engram_kv_key_filter_bytes", () => Sum(g => g._engine.Store is IKvJournalFigures f ? f.KeyFilterBytes : 0),
            description: "Memory of the filter of stored keys (SQLite), which answers a GET of a key never written and journals the first SET of a new key without a database read; about 2 bytes per key, 256 KB at least.");
        meter.CreateObservableGauge("engram_store_notices", () => Sum(g => g._engine.Store is IStoreNotices n ? n.NoticeCount : 0),
            description: "Notices the store recorded since it opened: what it recovered from on its own (a key-value journal of another database moved aside, damage in it, leftover writes not applied); GET /health (storage.notices) and the log say what each is.");
        meter.CreateObservableGauge("engram_graph_entities", () => Sum(g => g._counts.GraphEntities), description: "Knowledge-graph entities.");
        meter.CreateObservableGauge("engram_graph_relations", () => Sum(g => g._counts.GraphRelations), description: "Knowledge-graph relations.");
        meter.CreateObservableGauge("engram_store_size_bytes", () => Sum(g => g._engine.Store.SizeBytes),
            description: "Size of the store on disk: the database file and its write-ahead log.");
        meter.CreateObservableGauge("engram_index_lag", () => Sum(g => g.IndexLag()),
            description: "Change-log entries written but not yet applied to the search index.");
        meter.CreateObservableGauge("engram_index_lag_seconds", () => Max(g => g._engine.IndexLag().AgeSeconds),
            description: "How long the search index has been behind the change log (0 when caught up); while the store is away, since its last catch-up.");
        meter.CreateObservableGauge("engram_store_up", StoreUp,
            description: "1 when the store answered its last probe (at most a second old on a scrape), else 0; labels: backend (sqlite, postgres) and location (host:port/database or the file, no credentials).");
        meter.CreateObservableGauge("engram_store_round_trip_seconds", StoreRoundTrip,
            description: "How long the store took to answer its last probe (a trivial statement); absent while it does not answer.");
        meter.CreateObservableGauge("engram_embedding_pending", () => Sum(g => g._engine.Index.PendingVectors),
            description: "Memories in the index waiting for their embedding vector.");
        meter.CreateObservableGauge("engram_index_tombstones", Tombstones,
            description: "Removed entries an index still holds until it is compacted, by index: vectors (HNSW tombstones), lexical (documents with dead BM25 postings), documents (retired document numbers).");
        meter.CreateObservableGauge("engram_index_size_bytes", IndexSizes,
            description: "Index sizes by index: snapshot (the file on disk), vectors (live vectors x dimensions x 4 bytes, an estimate of the vectors' memory).");
    }

    public EngramGauges(EngramEngine engine, ILogger<EngramGauges> log)
    {
        _engine = engine;
        _log = log;
        // Counters appear in /metrics at their first Add: start the failure counters at 0, so a rate
        // (and an alert on it) exists before the first failure.
        foreach (var kind in (ReadOnlySpan<string>)[EngramInstruments.Hybrid, EngramInstruments.Semantic, EngramInstruments.Lexical, EngramInstruments.Graph])
        {
            EngramInstruments.SearchRequests.Add(0, new KeyValuePair<string, object?>("kind", kind));
            EngramInstruments.SearchErrors.Add(0, new KeyValuePair<string, object?>("kind", kind));
        }
        foreach (var op in (ReadOnlySpan<string>)[EngramInstruments.Documents, EngramInstruments.Query])
        {
            EngramInstruments.EmbeddingFailures.Add(0, new KeyValuePair<string, object?>("op", op));
        }
        Open[this] = 0;
        RefreshIfStale();
    }

    /// <summary>The newest counts read, and when (tests).</summary>
    public StoreCounts Counts => Volatile.Read(ref _counts);

    public void Dispose() => Open.TryRemove(this, out _);

    /// <summary>Probes the store (reachability, round trip, the change log's position), then reads the writer's counters.</summary>
    public async Task RefreshAsync(CancellationToken ct = default)
    {
        var probe = await _engine.Probe.RunAsync(ct).ConfigureAwait(false);
        if (!probe.Reachable)
        {
            return; // the last counts stay; engram_store_up says why they do not move (the outage is logged by the jobs)
        }
        var counts = await _engine.Store.ReadCountsAsync(ct).ConfigureAwait(false);
        Volatile.Write(ref _counts, counts);
    }

    private void RefreshIfStale()
    {
        var now = Stopwatch.GetTimestamp(); // real time, whatever clock the engine runs on
        if (Interlocked.Read(ref _refreshedAt) != long.MinValue && Stopwatch.GetElapsedTime(Interlocked.Read(ref _refreshedAt), now) < MaxAge)
        {
            return;
        }
        if (Interlocked.CompareExchange(ref _refreshing, 1, 0) != 0)
        {
            return;
        }
        Interlocked.Exchange(ref _refreshedAt, now);
        _ = Task.Run(async () =>
        {
            try
            {
                await RefreshAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is StoreException or ObjectDisposedException or Core.Storage.Sqlite.SqliteException)
            {
                LogRefreshFailed(_log, ex.Message); // the last figures stay; the next scrape tries again
            }
            finally
            {
                Volatile.Write(ref _refreshing, 0);
            }
        });
    }

    /// <summary>Entries the change log has beyond what the index applied: the newest known position is this process's last acknowledged write or the last probe of the store.</summary>
    private long IndexLag() => _engine.IndexLag().Entries;

    private static double Max(Func<EngramGauges, double> read)
    {
        double max = 0;
        foreach (var gauges in Open.Keys)
        {
            gauges.RefreshIfStale();
            max = Math.Max(max, read(gauges));
        }
        return max;
    }

    private static IEnumerable<Measurement<long>> StoreUp()
    {
        foreach (var gauges in Open.Keys)
        {
            gauges.RefreshIfStale();
            var probe = gauges._engine.Probe;
            yield return new Measurement<long>(probe.Last is { Reachable: true } ? 1 : 0,
                new KeyValuePair<string, object?>("backend", probe.Kind), new KeyValuePair<string, object?>("location", probe.Location));
        }
    }

    private static IEnumerable<Measurement<double>> StoreRoundTrip()
    {
        foreach (var gauges in Open.Keys)
        {
            var probe = gauges._engine.Probe;
            if (probe.Last is { RoundTripMs: { } ms })
            {
                yield return new Measurement<double>(ms / 1000,
                    new KeyValuePair<string, object?>("backend", probe.Kind), new KeyValuePair<string, object?>("location", probe.Location));
            }
        }
    }

    private static long Sum(Func<EngramGauges, long> read)
    {
        long total = 0;
        foreach (var gauges in Open.Keys)
        {
            gauges.RefreshIfStale();
            total += read(gauges);
        }
        return total;
    }

    private static IEnumerable<Measurement<long>> Memories()
    {
        var totals = new Dictionary<(string Tier, string Type), long>();
        foreach (var gauges in Open.Keys)
        {
            gauges.RefreshIfStale();
            foreach (var (key, n) in gauges.Counts.Memories)
            {
                totals[key] = totals.GetValueOrDefault(key) + n;
            }
        }
        foreach (var ((tier, type), n) in totals)
        {
            yield return new Measurement<long>(n, new KeyValuePair<string, object?>("tier", tier), new KeyValuePair<string, object?>("type", type));
        }
    }

    private static IEnumerable<Measurement<long>> Tombstones()
    {
        long vectors = 0, lexical = 0, documents = 0;
        foreach (var gauges in Open.Keys)
        {
            var tombstones = gauges._engine.Index.Tombstones;
            (vectors, lexical, documents) = (vectors + tombstones.Vectors, lexical + tombstones.Lexical, documents + tombstones.Documents);
        }
        yield return new Measurement<long>(vectors, new KeyValuePair<string, object?>("index", "vectors"));
        yield return new Measurement<long>(lexical, new KeyValuePair<string, object?>("index", "lexical"));
        yield return new Measurement<long>(documents, new KeyValuePair<string, object?>("index", "documents"));
    }

    private static IEnumerable<Measurement<long>> IndexSizes()
    {
        long snapshot = 0, vectors = 0;
        foreach (var gauges in Open.Keys)
        {
            var engine = gauges._engine;
            if (engine.SnapshotPath is { } path && new FileInfo(path) is { Exists: true } file)
            {
                snapshot += file.Length;
            }
            vectors += (long)engine.Index.VectorCount * engine.Embedder.Dimensions * sizeof(float);
        }
        yield return new Measurement<long>(snapshot, new KeyValuePair<string, object?>("index", "snapshot"));
        yield return new Measurement<long>(vectors, new KeyValuePair<string, object?>("index", "vectors"));
    }

    [LoggerMessage(EventId = 3100, Level = LogLevel.Warning, Message = "Could not refresh the counts behind /metrics: {Error}")]
    private static partial void LogRefreshFailed(ILogger logger, string error);
}
