using System.Globalization;
using Engram.Core;
using Engram.Core.Graph;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Server.Http;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>The overview: counts by type and tier, keys, entities and relations, recent writes; for admins store size, index lag, embeddings, backup age and health.</summary>
internal static class UiOverview
{
    public static async Task<IResult> PageAsync(HttpContext http, EngramEngine engine, MemoryService memories, KvService kv, GraphService graph,
        HealthChecks health, BackupService backups, RequestRate requests, TimeProvider clock, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(UiPage.Filled(http.Request.Query));
        var caller = http.GetCaller();
        var stats = await engine.GetStatsAsync(caller, ct);
        // One count query (live keys only), not a listing of up to 1,000 keys shown as "1000+".
        var keys = await kv.CountAsync(caller, ct);
        // The writer's counts, not the graph: the page read every entity, observation and relation on each load.
        var graphCounts = await graph.CountAsync(caller, ct);
        var recent = await memories.ListAsync(caller, new MemoryFilter { ExcludeSuperseded = true }, 10, null, ct);

        var figures = new List<(string Label, string Value)>();
        Stat(figures, "memories", stats.Memories.Total.ToString("N0", CultureInfo.InvariantCulture));
        Stat(figures, "key-value keys", keys.Keys.ToString("N0", CultureInfo.InvariantCulture));
        Stat(figures, "entities", graphCounts.Entities.ToString("N0", CultureInfo.InvariantCulture));
        Stat(figures, "relations", graphCounts.Relations.ToString("N0", CultureInfo.InvariantCulture));
        if (stats.StoreBytes is { } bytes)
        {
            Stat(figures, "store size", (bytes / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB");
        }
        if (stats.Index is { } index)
        {
            Stat(figures, "index lag (entries)", (index.Lag?.Entries ?? 0).ToString(CultureInfo.InvariantCulture));
            Stat(figures, "pending embeddings", index.PendingEmbeddings.ToString(CultureInfo.InvariantCulture));
        }
        if (caller.Role >= Role.Admin && !caller.IsScoped)
        {
            var last = backups.List().OrderByDescending(b => b.CreatedAt).FirstOrDefault();
            Stat(figures, "last backup", last is null ? "none" : Age(clock.GetUtcNow() - last.CreatedAt) + " ago");
            // Store-wide figures (every tenant's requests), so admins only, like /metrics.
            var (perSecond, p50, p95) = requests.LastMinute();
            Stat(figures, "requests/s (last minute)", perSecond.ToString("0.##", CultureInfo.InvariantCulture));
            Stat(figures, "latency p50 / p95 (last minute)", p50 is null ? "none" : $"{p50.Value.ToString("0.#", CultureInfo.InvariantCulture)} / {p95!.Value.ToString("0.#", CultureInfo.InvariantCulture)} ms");
        }
        var report = caller.Role >= Role.Admin && !caller.IsScoped ? await health.RunAsync(ct) : null;
        return UiPage.Render<OverviewPage>(http, new OverviewPage.Data(figures, stats.Memories, report, recent.Items));
    }

    private static void Stat(List<(string Label, string Value)> figures, string label, string value) => figures.Add((label, value));

    internal static string Age(TimeSpan age) => age.TotalDays >= 1 ? $"{age.TotalDays:0.#} days" : age.TotalHours >= 1 ? $"{age.TotalHours:0.#} hours" : $"{Math.Max(0, age.TotalMinutes):0} minutes";
}
