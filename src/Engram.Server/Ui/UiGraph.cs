using System.Globalization;
using System.Text.Json;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// The graph: an entity's neighbours to a depth as an SVG picture (laid out by app.js from a JSON island), with
/// the server-rendered list of entities, relations and observations (with validity) as the no-JS view, and the
/// memories that name the entity.
/// </summary>
internal static class UiGraph
{
    private const int MaxPictured = 150;

    public static async Task<IResult> PageAsync(HttpContext http, GraphService graph, MemoryService memories, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        QueryParser.RefuseAllExcept(query, "entity", "depth");
        var entity = QueryParser.Single(query, "entity");
        var depth = QueryParser.Int(query, "depth") ?? 1;
        var caller = http.GetCaller();
        var picture = entity is null
            ? await graph.ReadGraphAsync(caller, includeInvalid: false, ct)
            : await graph.NeighborsAsync(caller, entity, depth, includeInvalid: true, ct: ct);

        var html = new HtmlBuilder();
        html.Add($"<form class=\"card filters\" method=\"get\" action=\"/ui/graph\"><label>Entity<input name=\"entity\" value=\"{entity}\"></label>");
        html.Add($"<label>Depth<input name=\"depth\" type=\"number\" min=\"1\" max=\"5\" value=\"{depth}\"></label><button type=\"submit\">Show</button></form>");

        var shown = picture.Entities.Take(MaxPictured).ToList();
        var names = shown.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var data = new
        {
            nodes = shown.Select(e => new { name = e.Name, type = e.EntityType, center = e.Name == entity }),
            links = picture.Relations.Where(r => names.Contains(r.From) && names.Contains(r.To)).Select(r => new { from = r.From, to = r.To, type = r.RelationType }),
        };
        // The default encoder writes <, > and & as \u003C…, so no value can close the script element.
        html.Add($"<script type=\"application/json\" id=\"graph-data\">{new Raw(JsonSerializer.Serialize(data))}</script>");
        html.Add($"<svg id=\"graph\" role=\"img\" aria-label=\"Graph of {(entity is null ? "all entities" : entity)}\" data-href=\"/ui/graph?depth={depth}&amp;entity=\"></svg>");
        if (picture.Entities.Count > MaxPictured)
        {
            html.Add($"<p class=\"muted\">The picture shows {MaxPictured} of {picture.Entities.Count} entities; name one to see its neighbours.</p>");
        }

        html.Add($"<h2>Entities</h2><div class=\"table-wrap\"><table id=\"neighbours\"><thead><tr><th>Entity</th><th>Type</th><th>Observations</th></tr></thead><tbody>");
        foreach (var e in picture.Entities.Take(500))
        {
            html.Add($"<tr><td><a href=\"/ui/graph?entity={Uri.EscapeDataString(e.Name)}&amp;depth={depth}\">{e.Name}</a></td><td>{e.EntityType}</td><td><ul>");
            foreach (var o in e.Observations)
            {
                html.Add($"<li>{o}</li>");
            }
            foreach (var o in e.InvalidObservations ?? [])
            {
                html.Add($"<li class=\"muted\"><s>{o.Content}</s> (valid {Validity(o.ValidFrom, o.ValidTo)})</li>");
            }
            html.Add($"</ul></td></tr>");
        }
        html.Add($"</tbody></table></div><h2>Relations</h2><ul>");
        foreach (var r in picture.Relations.Take(1000))
        {
            html.Add($"<li>{r.From} <span class=\"tag\">{r.RelationType}</span> {r.To}{new Raw(r.Valid ? "" : " <span class=\"muted\">(no longer valid)</span>")}</li>");
        }
        html.Add($"</ul>");
        if (entity is not null)
        {
            var naming = await memories.ListAsync(caller, new MemoryFilter { Entity = entity, ExcludeSuperseded = true }, 20, null, ct);
            html.Add($"<h2>Memories naming {entity}</h2><ul>");
            foreach (var m in naming.Items)
            {
                html.Add($"<li><a href=\"/ui/memories/{m.Id}\">{UiMemories.Short(m.Content, 200)}</a></li>");
            }
            html.Add($"</ul><p><a href=\"/ui/memories?entity={Uri.EscapeDataString(entity)}\">All memories naming {entity}</a></p>");
        }
        return UiPage.Render(http, "Graph", "/ui/graph", html);
    }

    private static string Validity(DateTimeOffset? from, DateTimeOffset? to) =>
        $"{from?.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "…"} to {to?.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "…"}";
}
