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
        var keys = await kv.ListAsync(caller, "*", 1000, null, ct);
        var picture = await graph.ReadGraphAsync(caller, includeInvalid: false, ct);
        var recent = await memories.ListAsync(caller, new MemoryFilter { ExcludeSuperseded = true }, 10, null, ct);

        var html = new HtmlBuilder();
        html.Add($"<div class=\"grid\">");
        Stat(html, "memories", stats.Memories.Total.ToString("N0", CultureInfo.InvariantCulture));
        Stat(html, "key-value keys", keys.Items.Count + (keys.NextCursor is null ? "" : "+"));
        Stat(html, "entities", picture.Entities.Count.ToString("N0", CultureInfo.InvariantCulture));
        Stat(html, "relations", picture.Relations.Count.ToString("N0", CultureInfo.InvariantCulture));
        if (stats.StoreBytes is { } bytes)
        {
            Stat(html, "store size", (bytes / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB");
        }
        if (stats.Index is { } index)
        {
            Stat(html, "index lag (entries)", (index.Lag?.Entries ?? 0).ToString(CultureInfo.InvariantCulture));
            Stat(html, "pending embeddings", index.PendingEmbeddings.ToString(CultureInfo.InvariantCulture));
        }
        if (caller.Role >= Role.Admin && !caller.IsScoped)
        {
            var last = backups.List().OrderByDescending(b => b.CreatedAt).FirstOrDefault();
            Stat(html, "last backup", last is null ? "none" : Age(clock.GetUtcNow() - last.CreatedAt) + " ago");
            // Store-wide figures (every tenant's requests), so admins only, like /metrics.
            var (perSecond, p50, p95) = requests.LastMinute();
            Stat(html, "requests/s (last minute)", perSecond.ToString("0.##", CultureInfo.InvariantCulture));
            Stat(html, "latency p50 / p95 (last minute)", p50 is null ? "none" : $"{p50.Value.ToString("0.#", CultureInfo.InvariantCulture)} / {p95!.Value.ToString("0.#", CultureInfo.InvariantCulture)} ms");
        }
        html.Add($"</div><div class=\"grid\"><section class=\"card\"><h2>By type</h2><table><tbody>");
        foreach (var (type, n) in stats.Memories.ByType)
        {
            html.Add($"<tr><td><a href=\"/ui/memories?type={Uri.EscapeDataString(type)}\">{type}</a></td><td>{n}</td></tr>");
        }
        html.Add($"</tbody></table></section><section class=\"card\"><h2>By tier</h2><table><tbody>");
        foreach (var (tier, n) in stats.Memories.ByTier)
        {
            html.Add($"<tr><td><a href=\"/ui/memories?tier={Uri.EscapeDataString(tier)}\">{tier}</a></td><td>{n}</td></tr>");
        }
        html.Add($"</tbody></table></section></div>");
        if (caller.Role >= Role.Admin && !caller.IsScoped)
        {
            var report = await health.RunAsync(ct);
            html.Add($"<section class=\"card\"><h2>Health: {(report.Ready ? "ready" : "not ready")}</h2><table><tbody>");
            foreach (var check in report.Checks)
            {
                html.Add($"<tr><td>{check.Name}</td><td>{check.Status}</td><td>{check.Detail}</td></tr>");
            }
            html.Add($"</tbody></table></section>");
        }
        html.Add($"<h2>Recent writes</h2><ul>");
        foreach (var m in recent.Items)
        {
            html.Add($"<li><a href=\"/ui/memories/{m.Id}\">{UiMemories.Short(m.Content, 160)}</a> <span class=\"muted mono\">{m.UpdatedAt}</span></li>");
        }
        html.Add($"</ul>");
        return UiPage.Render(http, "Overview", "/ui", html);
    }

    private static void Stat(HtmlBuilder html, string label, string value) => html.Add($"<div class=\"card stat\"><b>{value}</b><span>{label}</span></div>");

    internal static string Age(TimeSpan age) => age.TotalDays >= 1 ? $"{age.TotalDays:0.#} days" : age.TotalHours >= 1 ? $"{age.TotalHours:0.#} hours" : $"{Math.Max(0, age.TotalMinutes):0} minutes";
}
