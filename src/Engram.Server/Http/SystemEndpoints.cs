using System.Diagnostics;
using System.Reflection;
using Engram.Core;
using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary><c>/health</c> and <c>/v1/stats</c>.</summary>
internal static class SystemEndpoints
{
    public static readonly string Version =
        typeof(SystemEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static readonly long StartedAt = Stopwatch.GetTimestamp();

    public static IEndpointRouteBuilder MapSystemEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", HealthAsync).WithName("Health").Requires(Role.Read).WithTags("system")
            .WithSummary("Every check (store, disk, index, embedder, read-only mode, memory budget) with its status and time: ok, degraded (ready, with a warning), or 503 unavailable.")
            .Produces<HealthResponse>().Produces<HealthResponse>(StatusCodes.Status503ServiceUnavailable);
        // Probes for orchestrators: answered without a key, and saying nothing but up/ready.
        app.MapGet("/health/live", Live).WithName("Liveness").WithTags("system").Public()
            .WithSummary("200 while the process runs; no key needed.").Produces<ProbeResponse>();
        app.MapGet("/health/ready", ReadyAsync).WithName("Readiness").WithTags("system").Public()
            .WithSummary("200 when the store answers, the disk has room, the indexes are caught up and the embedder answers, else 503; no key needed.")
            .Produces<ProbeResponse>().Produces<ProbeResponse>(StatusCodes.Status503ServiceUnavailable);
        app.MapGet("/v1/stats", StatsAsync).WithName("Stats").Requires(Role.Read).WithTags("system").Produces<StoreStatistics>();
        app.MapGet("/v1/scopes", ScopesAsync).WithName("Scopes").Requires(Role.Read).WithTags("memories")
            .WithSummary("The users, agents, sessions and namespaces the caller's current memories name, each with its number of memories (from the index, not a store scan).")
            .Produces<ScopeList>();
        return app;
    }

    private static async Task<IResult> ScopesAsync(HttpContext http, Core.Search.SearchService search, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        return TypedResults.Ok(new ScopeList(await search.CountScopesAsync(http.GetCaller(), ct)));
    }

    private static async Task<IResult> HealthAsync(HttpContext http, IMemoryStore store, ApiKeyService keys, HealthChecks checks, EngramEngine engine, CancellationToken ct)
    {
        var auth = keys.HasActiveKeys ? "keys" : "open";
        QueryParser.RefuseAllExcept(http.Request.Query);
        var uptime = (long)Stopwatch.GetElapsedTime(StartedAt).TotalSeconds;
        var report = await checks.RunAsync(ct);
        // The first failing check's finding (the store's: no SQL text, the result code at most) for clients that read only "error".
        var error = report.Checks.FirstOrDefault(c => c.Status == HealthChecks.Fail) is { } failed ? $"{failed.Name}: {failed.Detail}" : null;
        var status = !report.Ready ? "unavailable" : report.Checks.Any(c => c.Status == HealthChecks.Warn) ? "degraded" : "ok";
        var probe = engine.Probe.Last;
        // The findings name the server's files or database host, its memory and the whole store's counts: an admin's
        // (as /v1/stats shows them). Any other key, one tenant's or one scope's, sees each check's name and status.
        var caller = http.GetCaller();
        var seesFindings = caller.Role >= Role.Admin && !caller.IsScoped;
        var response = new HealthResponse(status, Version, store.Kind, uptime, auth, seesFindings ? error : Withheld(report))
        {
            ReadOnly = engine.Gate.ReadOnly,
            Shedding = engine.Gate.Shedding,
            Ms = report.Ms,
            Checks = seesFindings ? report.Checks : [.. report.Checks.Select(c => c with { Detail = WithheldDetail, Fix = null })],
            Database = new DatabaseHealth(engine.Probe.Kind, seesFindings ? engine.Probe.Location : null, probe?.Reachable ?? false, probe?.RoundTripMs,
                seesFindings ? probe?.Error : null),
            IndexLag = seesFindings ? engine.IndexLag() : null,
            Storage = engine.Store is Core.Storage.IStoreNotices notices
                ? new StorageHealth(notices.NoticeCount, seesFindings ? notices.OpenNotices : null)
                : null,
        };
        return report.Ready ? TypedResults.Ok(response) : TypedResults.Json(response, statusCode: 503);
    }

    private const string WithheldDetail = "(an admin key sees the finding)";

    /// <summary>The failing checks' names, for a caller that may not see their findings.</summary>
    private static string? Withheld(HealthReport report) =>
        report.Checks.Where(c => c.Status == HealthChecks.Fail).Select(c => c.Name).ToList() is { Count: > 0 } failing ? "failing: " + string.Join(", ", failing) : null;

    private static IResult Live(HttpContext http)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        return TypedResults.Ok(new ProbeResponse("ok"));
    }

    private static async Task<IResult> ReadyAsync(HttpContext http, HealthChecks checks, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        // Says nothing but ready or not (no key needed); /health has the findings.
        var report = await checks.RunAsync(ct);
        // The names of the failing checks only (say "store" while the database is away), never their findings.
        return report.Ready
            ? TypedResults.Ok(new ProbeResponse("ok"))
            : TypedResults.Json(new ProbeResponse("unavailable") { Failing = [.. report.Checks.Where(c => c.Status == HealthChecks.Fail).Select(c => c.Name)] }, statusCode: 503);
    }

    private static async Task<IResult> StatsAsync(HttpContext http, EngramEngine engine, Core.Llm.LlmAccess llm, Core.Llm.ConversationExtractor extractor, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var caller = http.GetCaller();
        var stats = await engine.GetStatsAsync(caller, ct);
        long? queue = null;
        try
        {
            queue = await extractor.Jobs.CountPendingExtractionJobsAsync(caller.Tenant, ct);
        }
        catch (Core.Storage.StoreUnavailableException)
        {
            // The database is away: stats answer from what is kept in memory (as the counts do), without the queue depth.
        }
        // The model's name for everyone (which features work); its endpoint, errors and latency for admins, like the store's.
        return TypedResults.Ok(stats with
        {
            Llm = new Core.Memories.LlmStatistics(llm.Model is not null, llm.Model?.Options.Model)
            {
                Status = caller.Role >= Role.Admin ? llm.Model?.Status() : null,
                ExtractionQueue = queue,
            },
        });
    }
}

/// <param name="Auth">"open" (no API keys: loopback only) or "keys"; nothing about the keys themselves.</param>
/// <param name="Status">ok; degraded (ready, but a check warns: read-only mode, memory above 85 %, a store notice); unavailable (not ready, 503).</param>
public sealed record HealthResponse(string Status, string Version, string Store, long UptimeSeconds, string Auth,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Error)
{
    /// <summary>Read-only mode: writes get 503.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Writes are shed: the process is over 95 % of its memory budget (until back under 85 %).</summary>
    public bool Shedding { get; init; }

    /// <summary>How long all checks took.</summary>
    public double Ms { get; init; }

    /// <summary>Every check with its status (ok, warn, fail), time, finding and what to do.</summary>
    public IReadOnlyList<Operations.HealthCheck> Checks { get; init; } = [];

    /// <summary>The store: backend, where it is (no credentials; an admin's answer only), whether it answered this check and how fast.</summary>
    public DatabaseHealth? Database { get; init; }

    /// <summary>How far the indexes are behind the store's change log: entries and for how long (an admin's answer only).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IndexLag? IndexLag { get; init; }

    /// <summary>What the store recovered from on its own since it opened (SQLite; absent for PostgreSQL).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public StorageHealth? Storage { get; init; }
}

/// <param name="NoticeCount">How many notices the store recorded since it opened (as engram_store_notices).</param>
/// <param name="Notices">The notices (time, kind, message; the first <see cref="Core.Storage.StoreNoticeList.Capacity"/>); null for a key that is not an unscoped admin's (they name the server's files).</param>
public sealed record StorageHealth(long NoticeCount,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    IReadOnlyList<Core.Storage.StoreNotice>? Notices);

/// <param name="Kind">sqlite or postgres.</param>
/// <param name="Location">host:port/database (PostgreSQL) or the database file (SQLite); null for a key that is not an unscoped admin's.</param>
public sealed record DatabaseHealth(string Kind,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Location, bool Reachable,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] double? RoundTripMs,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Error);

public sealed record ProbeResponse(string Status)
{
    /// <summary>When unavailable: the names of the failing checks (e.g. "store" while the database is away).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Failing { get; init; }
}

/// <summary>GET /v1/scopes: every scope value the caller's current memories name, with counts.</summary>
public sealed record ScopeList(IReadOnlyList<Core.Search.ScopeCount> Items);
