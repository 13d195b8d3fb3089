using System.Diagnostics;
using System.Reflection;
using Engram.Core;
using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Core.Storage;
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
            .WithSummary("ok when the store answers; 503 with status unavailable when it does not.")
            .Produces<HealthResponse>().Produces<HealthResponse>(StatusCodes.Status503ServiceUnavailable);
        // Probes for orchestrators: answered without a key, and saying nothing but up/ready.
        app.MapGet("/health/live", Live).WithName("Liveness").WithTags("system").Public()
            .WithSummary("200 while the process runs; no key needed.").Produces<ProbeResponse>();
        app.MapGet("/health/ready", ReadyAsync).WithName("Readiness").WithTags("system").Public()
            .WithSummary("200 when the store answers, else 503; no key needed.")
            .Produces<ProbeResponse>().Produces<ProbeResponse>(StatusCodes.Status503ServiceUnavailable);
        app.MapGet("/v1/stats", StatsAsync).WithName("Stats").Requires(Role.Read).WithTags("system").Produces<StoreStatistics>();
        return app;
    }

    private static async Task<IResult> HealthAsync(HttpContext http, IMemoryStore store, ApiKeyService keys, CancellationToken ct)
    {
        var auth = keys.HasActiveKeys ? "keys" : "open";
        QueryParser.RefuseAllExcept(http.Request.Query);
        var uptime = (long)Stopwatch.GetElapsedTime(StartedAt).TotalSeconds;
        try
        {
            await store.CheckAsync(ct);
            return TypedResults.Ok(new HealthResponse("ok", Version, store.Kind, uptime, auth, null));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Not the exception's message: a store's can hold SQL text. The result code is enough to start from.
            var error = ex is Core.Storage.Sqlite.SqliteException sqlite ? $"the store did not answer (SQLite result code {sqlite.ResultCode})" : "the store did not answer";
            return TypedResults.Json(new HealthResponse("unavailable", Version, store.Kind, uptime, auth, error), statusCode: 503);
        }
    }

    private static IResult Live(HttpContext http)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        return TypedResults.Ok(new ProbeResponse("ok"));
    }

    private static async Task<IResult> ReadyAsync(HttpContext http, IMemoryStore store, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        try
        {
            await store.CheckAsync(ct);
            return TypedResults.Ok(new ProbeResponse("ok"));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return TypedResults.Json(new ProbeResponse("unavailable"), statusCode: 503);
        }
    }

    private static async Task<IResult> StatsAsync(HttpContext http, EngramEngine engine, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        return TypedResults.Ok(await engine.GetStatsAsync(http.GetCaller(), ct));
    }
}

/// <param name="Auth">"open" (no API keys: loopback only) or "keys"; nothing about the keys themselves.</param>
public sealed record HealthResponse(string Status, string Version, string Store, long UptimeSeconds, string Auth,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Error);

public sealed record ProbeResponse(string Status);
