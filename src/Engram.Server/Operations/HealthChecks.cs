using System.Diagnostics;
using System.Text.Json.Serialization;
using Engram.Core;
using Engram.Core.Embeddings;
using Engram.Core.Embeddings.Transformer;
using Engram.Core.Storage;

namespace Engram.Server.Operations;

/// <summary>
/// The readiness checks, in one place for <c>/health</c>, <c>/health/ready</c> and <c>engram doctor</c>: the store
/// answers, the data folder's disk has room, the indexes are caught up with the change log, the embedder answers; and what
/// the store recovered from on its own (its notices), which warns.
/// Read-only mode and the memory budget are reported beside them but never make the server unready: a server that
/// refuses writes still serves every read, and taking it out of a load balancer would turn a write outage into a full one.
/// </summary>
public sealed class HealthChecks(EngramEngine engine, EngramServerOptions options, MemoryMonitor? memory = null, Core.Llm.LlmAccess? llm = null)
{
    public const string Ok = "ok";
    public const string Warn = "warn";
    public const string Fail = "fail";

    /// <summary>The check of the store's notices (<see cref="StoreNotice"/>): warns while there are any, never fails.</summary>
    public const string NoticesCheck = "store_notices";

    /// <summary>An embedding failure younger than this, with vectors still pending, makes the embedder check fail.</summary>
    public static readonly TimeSpan RecentEmbeddingFailure = TimeSpan.FromMinutes(1);

    /// <summary>Runs every check (each timed); <see cref="HealthReport.Ready"/> is false when one fails.</summary>
    public async Task<HealthReport> RunAsync(CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        var checks = new List<HealthCheck>
        {
            await TimeAsync("store", StoreAsync, ct).ConfigureAwait(false),
            await TimeAsync(NoticesCheck, _ => Task.FromResult(Notices()), ct).ConfigureAwait(false),
            await TimeAsync("disk", _ => Task.FromResult(Disk()), ct).ConfigureAwait(false),
            await TimeAsync("index", _ => Task.FromResult(Index()), ct).ConfigureAwait(false),
            await TimeAsync("embedder", _ => Task.FromResult(Embedder()), ct).ConfigureAwait(false),
            await TimeAsync("read_only", _ => Task.FromResult(ReadOnly()), ct).ConfigureAwait(false),
            await TimeAsync("memory", _ => Task.FromResult(Memory()), ct).ConfigureAwait(false),
            await TimeAsync("llm", _ => Task.FromResult(LanguageModel()), ct).ConfigureAwait(false),
        };
        var ready = checks.All(c => c.Status != Fail);
        OperationsGauges.Ready(ready);
        return new HealthReport(ready, checks, Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 3));
    }

    private static async Task<HealthCheck> TimeAsync(string name, Func<CancellationToken, Task<(string Status, string Detail, string? Fix)>> check, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        (string Status, string Detail, string? Fix) result;
        try
        {
            result = await check(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Never the exception's message: a store's can hold SQL text.
            result = (Fail, $"the check failed ({ex.GetType().Name})", "see the server log; run engram doctor --data DIR on the server's machine");
        }
        return new HealthCheck(name, result.Status, Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 3), result.Detail, result.Fix);
    }

    /// <summary>The store answers (timed: the round trip); names the backend and where it is (never a password).</summary>
    private async Task<(string, string, string?)> StoreAsync(CancellationToken ct)
    {
        var probe = await engine.Probe.RunAsync(ct).ConfigureAwait(false);
        var where = $"{engine.Probe.Kind} {engine.Probe.Location}";
        if (probe.Reachable)
        {
            return (Ok, $"{where} answers ({probe.RoundTripMs:0.###} ms round trip)", null);
        }
        return engine.Probe.Kind == "postgres"
            ? (Fail, $"{where} does not answer: {probe.Error}; writes get 503, searches answer from the indexes",
                "start PostgreSQL or restore the network path to it (pg_isready -h HOST -p PORT); Engram reconnects by itself, no restart needed")
            : (Fail, $"{where} does not answer: {probe.Error}",
                "check the data folder's disk and permissions; engram maintenance integrity --data DIR; restore from a backup if it is corrupt");
    }

    /// <summary>
    /// What the store recovered from on its own since it opened (<see cref="IStoreNotices"/>): a key-value journal of another
    /// database moved aside, damage in it, leftover writes not applied yet. Warns (the server is degraded: an operator has to
    /// look) but never fails readiness: the store serves, and taking it out of a load balancer would help nothing.
    /// </summary>
    private (string, string, string?) Notices()
    {
        if (engine.Store is not IStoreNotices store || store.NoticeCount == 0)
        {
            return (Ok, "none since the store opened", null);
        }
        var notices = store.OpenNotices;
        var count = store.NoticeCount;
        var detail = string.Join("; ", notices.Select(n => $"[{n.Kind}] {n.Message}"));
        if (count > 1)
        {
            detail = $"{count} notices since the store opened{(count > notices.Count ? $" (the first {notices.Count} kept)" : "")}: {detail}";
        }
        return (Warn, detail, string.Join(" | ", notices.Select(n => n.Kind).Distinct().Select(StoreNotice.FixFor)));
    }

    /// <summary>
    /// The optional language model, from its last calls (no call is made for a health check: a paid API or a busy local
    /// model is not probed every few seconds). Never fails readiness: without the model only its features answer 503/502.
    /// </summary>
    private (string, string, string?) LanguageModel()
    {
        if (llm?.Model is not { } model)
        {
            return (Ok, "no language model configured (optional: LLM_BASE_URL and LLM_MODEL enable extraction, chat and reflections)", null);
        }
        var status = model.Status();
        var where = $"{status.Model} at {status.Endpoint}";
        if (status.LastErrorAt is { } failedAt && (status.LastSuccessAt is not { } okAt || failedAt > okAt))
        {
            return (Warn, $"{where}: the last call failed: {status.LastError}",
                "check that the model server runs and knows the model (curl LLM_BASE_URL/models); jobs retry with backoff meanwhile");
        }
        return (Ok, status.Calls == 0
            ? $"{where}: not called yet"
            : $"{where}: {status.Calls} calls, last in {status.LastLatencyMs:0.#} ms", null);
    }

    private (string, string, string?) Disk()
    {
        var free = FreeDiskBytes(options.DataPath);
        if (free is not { } bytes)
        {
            return (Warn, "free disk space unknown", null);
        }
        OperationsGauges.DiskFree(bytes);
        var minimum = (long)options.Health.MinFreeDiskMB * 1024 * 1024;
        var text = $"{Mb(bytes)} free on the data folder's disk (minimum {options.Health.MinFreeDiskMB} MB)";
        return bytes >= minimum
            ? (Ok, text, null)
            : (Fail, text, "free disk space (old backups, logs) or move the data folder; lower Engram:Health:MinFreeDiskMB only if the disk is small by design");
    }

    /// <summary>Free bytes on the disk holding <paramref name="dataPath"/> (or its nearest existing parent), or null.</summary>
    public static long? FreeDiskBytes(string dataPath)
    {
        try
        {
            var path = Path.GetFullPath(dataPath);
            while (!Directory.Exists(path) && Path.GetDirectoryName(path) is { } parent)
            {
                path = parent;
            }
            return new DriveInfo(path).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private (string, string, string?) Index()
    {
        var build = engine.EnsureIndexedAsync();
        if (!build.IsCompleted)
        {
            return (Fail, "the indexes are still loading (snapshot or rebuild from the change log)", "wait: the server logs when they are built");
        }
        if (build.IsFaulted)
        {
            return (Fail, "the indexes failed to build", "see the server log; engram reindex --data DIR rebuilds them");
        }
        // The store check ran first and read the change log's position; with the store away the last known one stands in.
        var lag = engine.IndexLag();
        var last = engine.Probe.LastKnownSeq ?? engine.Index.AppliedSeq;
        var age = lag.Entries > 0 ? $", behind for {lag.AgeSeconds:0.#} s" : "";
        var detail = $"applied seq {engine.Index.AppliedSeq} of {last} (lag {lag.Entries}{age}, tolerance {options.Health.MaxIndexLag}); {engine.Index.Count} memories, {engine.Index.PendingVectors} vectors pending";
        if (engine.Probe.Last is { Reachable: false })
        {
            // Not a failure of the index: the store check fails already, and search answers from the index meanwhile.
            return (Warn, detail + "; the store is away, so the lag is at least this", null);
        }
        return lag.Entries <= options.Health.MaxIndexLag
            ? (Ok, detail, null)
            : (Fail, detail, "the index follower is behind: check the server log for index errors; engram reindex --data DIR rebuilds the indexes");
    }

    private (string, string, string?) Embedder()
    {
        var embedder = engine.Embedder;
        if (engine.Follower.LastEmbeddingErrorAt is { } failedAt && DateTimeOffset.UtcNow - failedAt < RecentEmbeddingFailure && engine.Index.PendingVectors > 0)
        {
            return (Fail, $"{embedder.ModelId} failed {(DateTimeOffset.UtcNow - failedAt).TotalSeconds:0} s ago and {engine.Index.PendingVectors} vectors wait (search is lexical for them)",
                "check the embedder (endpoint, API key, model files); admins see the error in GET /v1/stats (index.last_embedding_error)");
        }
        return Describe(embedder);
    }

    /// <summary>
    /// Whether <paramref name="embedder"/> can embed, without loading a model: a transformer is fine when loaded or
    /// when its package file is there (loading it is the first embed's job); a failed load is kept and reported.
    /// </summary>
    public static (string Status, string Detail, string? Fix) Describe(IEmbeddingProvider embedder) => embedder switch
    {
        TransformerEmbeddingProvider t when t.LoadError is { } error =>
            (Fail, $"{t.ModelId} failed to load: {error}", "reinstall the model package, or set ENGRAM_EMBEDDINGS=builtin"),
        TransformerEmbeddingProvider t when t.IsLoaded => (Ok, $"{t.ModelId} loaded", null),
        TransformerEmbeddingProvider t when File.Exists(t.PackagePath) => (Ok, $"{t.ModelId} loadable (loads on first use)", null),
        TransformerEmbeddingProvider t =>
            (Fail, $"{t.ModelId}: no model package at {t.PackagePath}", "install the model package next to engram (models/), set Engram:Embeddings:Transformer:ModelDirectory, or ENGRAM_EMBEDDINGS=builtin"),
        OpenAiCompatibleEmbeddingProvider => (Ok, $"{embedder.ModelId} (remote; checked by its failures, not called per probe)", null),
        _ => (Ok, $"{embedder.ModelId} (in process)", null),
    };

    private (string, string, string?) ReadOnly() => engine.Gate.ReadOnly
        ? (Warn, "read-only mode: writes get 503", "POST /v1/admin/readonly {\"enabled\":false} (admin), or unset READONLY_MODE")
        : (Ok, "writes allowed", null);

    private (string, string, string?) Memory()
    {
        if (memory is null)
        {
            return (Ok, "no monitor in this process", null);
        }
        var sample = memory.Last ?? memory.Sample();
        var text = $"working set {Mb(sample.WorkingSetBytes)} of {Mb(sample.BudgetBytes)} budget ({sample.Ratio:P0}, {memory.Budget.Source})";
        return sample.Shedding
            ? (Warn, text + "; writes shed until under 85 %", "POST /v1/admin/cache/cleanup and POST /v1/admin/gc; raise ENGRAM_MEMORY_BUDGET_MB if the store needs more")
            : sample.Warning
                ? (Warn, text + "; above 85 %", "POST /v1/admin/cache/cleanup; raise ENGRAM_MEMORY_BUDGET_MB if the store needs more")
                : (Ok, text, null);
    }

    internal static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):0.#} MB";
}

/// <summary>One check: name, ok/warn/fail, how long it took, what it found and (when not ok) what to do.</summary>
public sealed record HealthCheck(string Name, string Status, double Ms, string Detail,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Fix);

/// <summary>Every check's result; ready when none failed.</summary>
public sealed record HealthReport(bool Ready, IReadOnlyList<HealthCheck> Checks, double Ms);
