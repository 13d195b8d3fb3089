using System.Diagnostics;
using System.Runtime;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage.Sqlite;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Http;

/// <summary>
/// Server-wide operations for admins (issue 14): memory use, cache cleanup, a compacting GC and read-only mode.
/// They act on the whole process, every tenant included, so a scoped admin key may not use them.
/// </summary>
internal static partial class OperationsEndpoints
{
    private const int LargestTenants = 10;

    public static IEndpointRouteBuilder MapOperationsEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin").WithTags("operations");
        group.MapGet("/memory", Memory).WithName("AdminMemory").Requires(Role.Admin)
            .WithSummary("Working set against the budget, GC heap by generation, each cache and index with its size, the largest tenants.")
            .Produces<MemoryReport>();
        group.MapPost("/cache/cleanup", CacheCleanup).WithName("AdminCacheCleanup").Requires(Role.Admin)
            .WithSummary("Empties the caches (query vectors, API keys) and reports what was freed.").Produces<CacheCleanupReport>();
        group.MapPost("/gc", Collect).WithName("AdminGc").Requires(Role.Admin)
            .WithSummary("A blocking, compacting garbage collection (large object heap included); reports memory before and after.")
            .Produces<GcReport>();
        group.MapGet("/readonly", GetReadOnly).WithName("GetReadOnly").Requires(Role.Admin)
            .WithSummary("Whether the server is in read-only mode.").Produces<ReadOnlyState>();
        group.MapPost("/readonly", SetReadOnlyAsync).WithName("SetReadOnly").Requires(Role.Admin)
            .WithSummary("Turns read-only mode on or off ({\"enabled\":true}): every write of memories, key-value state and the graph gets 503; reads keep working.")
            .Accepts<ReadOnlyRequest>("application/json").Produces<ReadOnlyState>().ProducesProblem(400);
        return app;
    }

    private static Caller Operator(HttpContext http, string action)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var caller = http.GetCaller();
        caller.Require(Role.Admin, action);
        if (caller.IsScoped)
        {
            throw new ForbiddenException($"a scoped key may not {action}: it acts on the whole server");
        }
        return caller;
    }

    private static IResult Memory(HttpContext http, EngramEngine engine, MemoryMonitor monitor, ApiKeyService keys, AuditTrail audit, FailedAuthThrottle failedAuth,
        Microsoft.Extensions.Options.IOptions<EngramServerOptions> options)
    {
        Operator(http, "read the server's memory use");
        var sample = monitor.Sample();
        var gc = GC.GetGCMemoryInfo();
        string[] names = ["gen0", "gen1", "gen2", "loh", "poh"];
        var generations = new List<GcGeneration>();
        for (var i = 0; i < gc.GenerationInfo.Length && i < names.Length; i++)
        {
            var g = gc.GenerationInfo[i];
            generations.Add(new GcGeneration(names[i], g.SizeAfterBytes, g.FragmentationAfterBytes, i < 3 ? GC.CollectionCount(i) : null));
        }
        var index = engine.Index;
        var dims = engine.Embedder.Dimensions;
        var bytesPerComponent = options.Value.Search.VectorQuantization == Core.Indexing.Vector.VectorQuantization.None ? 4 : 1;
        var snapshot = engine.SnapshotPath is { } path && File.Exists(path) ? new FileInfo(path).Length : (long?)null;
        var indexes = new List<SizedPart>
        {
            // Estimates: vectors at their stored width plus ~16 graph links each; documents at ~400 bytes of table and postings.
            new("vectors", index.VectorCount, null, (long)index.VectorCount * (dims * bytesPerComponent + 16 * 4 * 2),
                $"{dims} dimensions, {(bytesPerComponent == 4 ? "float32" : "int8")}; {index.StagedVectors} staged, {index.PendingVectors} pending"),
            new("lexical_and_documents", index.Count, null, index.Count * 400L, snapshot is null ? "estimate" : $"estimate; the index snapshot on disk is {HealthChecks.Mb(snapshot.Value)}"),
        };
        // Every part that grows with traffic, with its hard bound and what happens when it is full (docs/OPERATIONS.md).
        var access = engine.Access;
        var clients = http.RequestServices.GetService(typeof(BoundedKeySet<RateLimits.ClientKey>)) as BoundedKeySet<RateLimits.ClientKey>;
        var caches = new List<SizedPart>
        {
            Cache(engine),
            engine.Copies is { } copies
                ? new("memory_copies", copies.Count, null, copies.Bytes,
                    $"copies of recently indexed or found memories that search answers from while the database is away; bounded to {HealthChecks.Mb(copies.CapacityBytes)} (Engram:Search:OutageCacheMB), least recently used out first")
                : new("memory_copies", 0, 0, 0, "off (SQLite store, or Engram:Search:OutageCacheMB 0)"),
            new("api_keys", keys.CachedKeys, keys.CacheCapacity, keys.CachedKeys * MemoryBudget.ApiKeyBytes, "keys seen since the last refresh; emptied when full"),
            engine.Store is SqliteMemoryStore kvStore ? KvStates(kvStore) : new(SqliteMemoryStore.KvStatesPart, 0, 0, 0, "off (PostgreSQL store: key-value reads go to the database)"),
            new(AccessTracker.Part, access.Pending, access.Capacity, access.Pending * AccessTracker.EntryBytes,
                $"search hits waiting to update last_accessed_at; beyond the bound dropped ({access.Dropped} so far)"),
            clients is null
                ? new("rate_limit_clients", 0, 0, 0, "off (Engram:RateLimit)")
                : Clients(clients, "callers with rate limits of their own; beyond the bound they share one limit"),
            Clients(failedAuth.Addresses, "addresses with a failed-key bucket of their own; beyond the bound they share one"),
            new("audit_denied_remotes", audit.TrackedRemotes, AuditTrail.MaxTrackedRemotes, audit.TrackedRemotes * 100L, "addresses whose denied requests are being sampled; emptied when full"),
        };
        var sqlite = engine.Store as SqliteMemoryStore;
        var backlog = sqlite?.Backlog ?? (Writes: 0, KvStates: 0);
        var queues = new List<SizedPart>
        {
            new("store_writer", backlog.Writes, SqliteWriter.DefaultQueueCapacity, null, "write requests waiting for the single writer; when full, callers wait (back-pressure)"),
            new("kv_write_behind", backlog.KvStates, sqlite?.KvStatesBound ?? 0, sqlite?.KvWaitingBytes ?? 0,
                "key-value states not folded into the table yet; the writer folds a chunk after each group from half the bound, and more past it"),
            new("audit_queue", audit.Pending, AuditTrail.QueueCapacity, audit.Pending * AuditTrail.EntryBytes, $"audit entries waiting to be written; beyond the bound dropped ({audit.Dropped} so far)"),
            new("webhook_queue", monitor.WebhookPending, MemoryMonitor.WebhookQueueCapacity, null, "memory notes waiting for the webhook; beyond the bound dropped"),
            new("embedding_pending", index.PendingVectors, null, null, "memories waiting for a vector: rows in the store, embedded in batches of 64 (part of the index, not bounded)"),
        };
        var tenants = index.Read(i => i.Docs.LargestTenants(LargestTenants));
        var slots = index.Read(i => i.Docs.NextDoc);
        // Updates and deletes retire a document number (a small doc-table row, never reused) and leave an HNSW
        // tombstone and dead BM25 postings, which the background compaction reclaims (Engram:Search:CompactionShare).
        var tombstones = index.Tombstones;
        indexes.Add(new("retired_slots", slots - index.Count, null, (slots - index.Count) * 120L,
            "document numbers of updated or deleted memories: about 120 bytes of table each, reclaimed only by a rebuild (engram maintenance reindex)"));
        indexes.Add(new("vector_tombstones", tombstones.Vectors, null, (long)tombstones.Vectors * (dims * bytesPerComponent + 16 * 4 * 2),
            $"removed vectors still in the HNSW graph ({tombstones.VectorNodes} nodes held); reclaimed by the background compaction"));
        indexes.Add(new("lexical_tombstones", tombstones.Lexical, null, null,
            "removed documents whose BM25 postings are not yet dropped; reclaimed by the background compaction"));
        return TypedResults.Ok(new MemoryReport(sample.WorkingSetBytes, sample.BudgetBytes, monitor.Budget.Source, sample.Ratio, sample.Warning, sample.Shedding,
            new GcReportPart(GC.GetTotalMemory(false), gc.HeapSizeBytes, gc.FragmentedBytes, gc.TotalCommittedBytes, gc.Compacted, generations),
            caches, indexes, queues, [.. tenants.Select(t => new TenantSize(t.Tenant, t.Memories))]));
    }

    /// <summary>The key-value states kept in memory: bounded in bytes, so the capacity is what the bound holds at their average size.</summary>
    private static SizedPart KvStates(SqliteMemoryStore store)
    {
        var (entries, bytes, limit) = (store.KvReadableStates, store.KvCacheBytes, store.KvCacheBytesLimit);
        var perState = entries > 0 && bytes > 0 ? (double)bytes / entries : TypicalKvStateBytes;
        return new(SqliteMemoryStore.KvStatesPart, entries, store.Backlog.KvStates + (long)(limit / perState), bytes,
            $"key-value states read or written recently, and keys found missing; bounded to {HealthChecks.Mb(limit)} (Engram:KeyValue:CacheMB, at most 10 % of the budget), " +
            "beyond which some of those the table holds are dropped (capacity: what the bound holds at their average size, plus the states waiting to be folded)");
    }

    /// <summary>A key-value state with a 100-byte value and a short key, as estimated (used before any is held).</summary>
    private const double TypicalKvStateBytes = 560;

    private static SizedPart Clients<TKey>(BoundedKeySet<TKey> set, string note) where TKey : notnull =>
        new(set.Part, set.Count, set.Capacity, set.Count * BoundedKeySet<TKey>.EntryBytes, $"{note} ({set.Overflowed} requests so far)");

    private static SizedPart Cache(EngramEngine engine) => engine.QueryCache is { } cache
        ? new("query_vectors", cache.Count, cache.Capacity, cache.Count * MemoryBudget.QueryVectorBytes, $"hits {cache.Hits}, misses {cache.Misses}")
        : new("query_vectors", 0, 0, 0, "off (Engram:Search:QueryCacheSize 0)");

    private static IResult CacheCleanup(HttpContext http, EngramEngine engine, ApiKeyService keys, MemoryMonitor monitor, ILogger<MemoryMonitor> logger)
    {
        var caller = Operator(http, "clear the server's caches");
        var before = MemoryMonitor.WorkingSet();
        var vectors = engine.QueryCache?.Clear() ?? 0;
        var apiKeys = keys.ClearCache();
        var copiesBytes = engine.Copies?.Bytes ?? 0;
        var copies = engine.Copies?.Clear() ?? 0;
        var kvStore = engine.Store as SqliteMemoryStore;
        var kvBytes = kvStore?.KvCacheBytes ?? 0;
        var kvStates = kvStore?.ClearKvCache() ?? 0;
        kvBytes -= kvStore?.KvCacheBytes ?? 0;
        LogCleanup(logger, caller.Actor, vectors, apiKeys);
        var sample = monitor.Sample();
        return TypedResults.Ok(new CacheCleanupReport(
            [new("query_vectors", vectors, null, vectors * MemoryBudget.QueryVectorBytes, null), new("api_keys", apiKeys, null, apiKeys * MemoryBudget.ApiKeyBytes, null),
                new("memory_copies", copies, null, copiesBytes, "refilled as memories are indexed and found"),
                new(SqliteMemoryStore.KvStatesPart, kvStates, null, kvBytes, "refilled as keys are read and written; states waiting to be folded stay")],
            before, sample.WorkingSetBytes, "freed memory returns to the system after a collection (POST /v1/admin/gc)"));
    }

    // A compacting collection stops every thread; on a large heap it takes seconds. One runs at a time, and a
    // call within CollectInterval of the last one answers that one's report (skipped: true) instead of stopping
    // the server again: an admin script in a loop, or a retrying proxy, cannot turn this route into a stall.
    // A minute: the collection's pause grows with the heap (seconds on a multi-GB one), and memory freed by one
    // collection is not regained faster than that by another.
    private static readonly TimeSpan CollectInterval = TimeSpan.FromSeconds(60);
    private static readonly Lock CollectGate = new();
    private static GcReport? _lastCollect;
    private static long _lastCollectAt;

    private static IResult Collect(HttpContext http, MemoryMonitor monitor, ILogger<MemoryMonitor> logger)
    {
        var caller = Operator(http, "run a garbage collection");
        lock (CollectGate)
        {
            if (_lastCollect is { } last && Stopwatch.GetElapsedTime(_lastCollectAt) < CollectInterval)
            {
                return TypedResults.Ok(last with { Skipped = true });
            }
            var workingSet = MemoryMonitor.WorkingSet();
            var heap = GC.GetTotalMemory(false);
            var started = Stopwatch.GetTimestamp();
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var sample = monitor.Sample();
            LogCollected(logger, caller.Actor, HealthChecks.Mb(workingSet), HealthChecks.Mb(sample.WorkingSetBytes), ms);
            _lastCollect = new GcReport(workingSet, sample.WorkingSetBytes, heap, GC.GetTotalMemory(false), Math.Round(ms, 1), sample.Shedding);
            _lastCollectAt = Stopwatch.GetTimestamp();
            return TypedResults.Ok(_lastCollect);
        }
    }

    private static IResult GetReadOnly(HttpContext http, EngramEngine engine)
    {
        Operator(http, "read the read-only mode");
        return TypedResults.Ok(new ReadOnlyState(engine.Gate.ReadOnly));
    }

    private static async Task<IResult> SetReadOnlyAsync(HttpContext http, EngramEngine engine, ILogger<MemoryMonitor> logger, CancellationToken ct)
    {
        var caller = Operator(http, "switch read-only mode");
        var request = await JsonBody.ReadAsync<ReadOnlyRequest>(http.Request, BodySize.Small, ct);
        var enabled = request.Enabled ?? throw new ValidationException("enabled", "enabled is required (true or false)");
        engine.Gate.ReadOnly = enabled;
        LogReadOnly(logger, caller.Tenant, caller.Actor, enabled);
        return TypedResults.Ok(new ReadOnlyState(enabled));
    }

    [LoggerMessage(EventId = 1410, Level = LogLevel.Warning, Message = "read-only mode {Enabled} (by {Tenant}/{Actor})")]
    private static partial void LogReadOnly(ILogger logger, string tenant, string actor, bool enabled);

    [LoggerMessage(EventId = 1411, Level = LogLevel.Information, Message = "caches cleared by {Actor}: {Vectors} query vectors, {Keys} API keys")]
    private static partial void LogCleanup(ILogger logger, string actor, int vectors, int keys);

    [LoggerMessage(EventId = 1412, Level = LogLevel.Information, Message = "compacting GC by {Actor}: working set {Before} -> {After} in {Ms:0} ms")]
    private static partial void LogCollected(ILogger logger, string actor, string before, string after, double ms);
}

public sealed record ReadOnlyRequest(bool? Enabled);

public sealed record ReadOnlyState(bool Enabled);

/// <summary>A cache, index or queue: entries (null: not counted), its bound (null: none of its own), estimated bytes and a note.</summary>
public sealed record SizedPart(string Name, long? Entries, long? Capacity, long? EstimatedBytes, string? Note);

public sealed record GcGeneration(string Generation, long SizeBytes, long FragmentationBytes, int? Collections);

public sealed record GcReportPart(long TotalMemoryBytes, long HeapSizeBytes, long FragmentedBytes, long CommittedBytes, bool LastCompacted, IReadOnlyList<GcGeneration> Generations);

public sealed record TenantSize(string Tenant, int Memories);

public sealed record MemoryReport(long WorkingSetBytes, long BudgetBytes, string BudgetSource, double UsedRatio, bool Warning, bool Shedding,
    GcReportPart Gc, IReadOnlyList<SizedPart> Caches, IReadOnlyList<SizedPart> Indexes, IReadOnlyList<SizedPart> Queues, IReadOnlyList<TenantSize> LargestTenants);

public sealed record CacheCleanupReport(IReadOnlyList<SizedPart> Freed, long WorkingSetBeforeBytes, long WorkingSetAfterBytes, string Note);

/// <param name="Skipped">True when this is the report of a collection that ran less than 10 s ago (none ran for this call).</param>
public sealed record GcReport(long WorkingSetBeforeBytes, long WorkingSetAfterBytes, long HeapBeforeBytes, long HeapAfterBytes, double Ms, bool Shedding, bool Skipped = false);
