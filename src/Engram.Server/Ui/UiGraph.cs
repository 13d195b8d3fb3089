using System.Text.Json;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// The graph: an entity's neighbours to a depth as an SVG picture (laid out by app.js from the JSON in its data-graph attribute), with
/// the server-rendered list of entities, relations and observations (with validity) as the no-JS view, and the
/// memories that name the entity.
/// </summary>
internal static class UiGraph
{
    private const int MaxPictured = 150;

    /// <summary>How many entities the whole-graph page shows (the most recently created); naming one shows its neighbours.</summary>
    internal const int PageSize = MaxPictured;

    public static async Task<IResult> PageAsync(HttpContext http, GraphService graph, MemoryService memories, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        QueryParser.RefuseAllExcept(query, "entity", "depth");
        // As the graph keeps names (trimmed, NFC): the picture marks its centre by comparing with the names it holds, and
        // " Alice" or a decomposed "Zoë" found the entity but centred nothing.
        var entity = QueryParser.Single(query, "entity") is { } named ? GraphValidator.Name(named, "entity") : null;
        // Checked with or without an entity: the whole-graph page copies it into every entity link.
        var depth = GraphValidator.Depth(QueryParser.Int(query, "depth"), 1, GraphValidator.MaxDepth, "depth");
        var caller = http.GetCaller();
        // Without an entity, a page of the graph and its size from the writer's counts: the page read the whole graph.
        var picture = entity is null
            ? await graph.ReadRecentAsync(caller, PageSize, ct)
            : await graph.NeighborsAsync(caller, entity, depth, includeInvalid: true, ct: ct);
        var total = entity is null ? await graph.CountAsync(caller, ct) : null;

        var shown = picture.Entities.Take(MaxPictured).ToList();
        var names = shown.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var data = new
        {
            nodes = shown.Select(e => new { name = e.Name, type = e.EntityType, center = e.Name == entity }),
            links = picture.Relations.Where(r => names.Contains(r.From) && names.Contains(r.To)).Select(r => new { from = r.From, to = r.To, type = r.RelationType }),
        };
        var naming = entity is null ? null : (await memories.ListAsync(caller, new MemoryFilter { Entity = entity, ExcludeSuperseded = true }, 20, null, ct)).Items;
        return UiPage.Render<GraphPage>(http, new GraphPage.Data(entity, depth, picture, MaxPictured, JsonSerializer.Serialize(data), naming, total));
    }
}
