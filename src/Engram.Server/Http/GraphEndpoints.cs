using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// <c>/v1/graph</c>: the MCP reference memory server's knowledge-graph operations over REST (create,
/// add observations, the three deletes, read, search, open nodes) plus neighbours, shortest path and history.
/// </summary>
internal static class GraphEndpoints
{
    public static IEndpointRouteBuilder MapGraphEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/graph").WithTags("graph");

        group.MapPost("/entities", CreateEntitiesAsync).WithName("CreateEntities").Requires(Role.Write)
            .WithSummary("Create entities; names that exist already are skipped. Returns the entities created.")
            .Accepts<CreateEntitiesRequest>("application/json").Produces<EntitiesResponse>().ProducesProblem(400);
        group.MapPost("/relations", CreateRelationsAsync).WithName("CreateRelations").Requires(Role.Write)
            .WithSummary("Create relations between existing entities; duplicates (same from, to, relation_type) are skipped.")
            .Accepts<RelationsRequest>("application/json").Produces<RelationsResponse>().ProducesProblem(400);
        group.MapPost("/observations", AddObservationsAsync).WithName("AddObservations").Requires(Role.Write)
            .WithSummary("Add observations to entities; ones an entity already has are skipped. 404 for an unknown entity.")
            .Accepts<AddObservationsRequest>("application/json").Produces<AddObservationsResponse>().ProducesProblem(400).ProducesProblem(404);
        group.MapPost("/entities/delete", DeleteEntitiesAsync).WithName("DeleteEntities").Requires(Role.Write)
            .WithSummary("Delete entities with their observations and every relation touching them.")
            .Accepts<DeleteEntitiesRequest>("application/json").Produces<DeletedResponse>().ProducesProblem(400);
        group.MapPost("/observations/delete", DeleteObservationsAsync).WithName("DeleteObservations").Requires(Role.Write)
            .Accepts<DeleteObservationsRequest>("application/json").Produces<DeletedResponse>().ProducesProblem(400);
        group.MapPost("/relations/delete", DeleteRelationsAsync).WithName("DeleteRelations").Requires(Role.Write)
            .Accepts<RelationsRequest>("application/json").Produces<DeletedResponse>().ProducesProblem(400);
        group.MapGet("/", ReadGraphAsync).WithName("ReadGraph").Requires(Role.Read)
            .WithSummary("The whole graph; facts whose validity ended are left out unless include_invalid=true.")
            .Produces<KnowledgeGraph>().ProducesProblem(400);
        group.MapGet("/search", SearchAsync).WithName("SearchNodes").Requires(Role.Read)
            .WithSummary("Entities whose name, type or observations match the query (BM25), with the relations between them.")
            .Produces<KnowledgeGraph>().ProducesProblem(400);
        group.MapGet("/nodes", OpenNodesAsync).WithName("OpenNodes").Requires(Role.Read)
            .WithSummary("The named entities (names=a,b) and the relations between them.")
            .Produces<KnowledgeGraph>().ProducesProblem(400);
        group.MapGet("/entities/{name}/neighbors", NeighborsAsync).WithName("GraphNeighbors").Requires(Role.Read)
            .WithSummary("Entities within depth hops (1-5, both directions), optionally through one relation_type; at most limit (default 1,000, at most 10,000) besides the start, truncated: true when more lay within the depth.")
            .Produces<KnowledgeGraph>().ProducesProblem(400).ProducesProblem(404);
        group.MapGet("/entities/{name}/memories", MemoriesAsync).WithName("GraphEntityMemories").Requires(Role.Read)
            .WithSummary("Memories whose entities name this entity (case-insensitively), newest first; page with limit and next_cursor. 404 for an unknown entity.")
            .Produces<MemoryListResponse>().ProducesProblem(400).ProducesProblem(404);
        group.MapGet("/entities/{name}/history", HistoryAsync).WithName("GraphEntityHistory").Requires(Role.Read)
            .WithSummary("Every change of an entity, its observations and its relations, oldest first; limit per page (default 1,000, at most 10,000), next_cursor continues.")
            .Produces<GraphHistoryResponse>().ProducesProblem(404);
        group.MapGet("/path", PathAsync).WithName("GraphPath").Requires(Role.Read)
            .WithSummary("A shortest path (at most 6 relations, either direction) from one entity to another; 404 when none.")
            .Produces<KnowledgeGraph>().ProducesProblem(400).ProducesProblem(404);
        return app;
    }

    private static async Task<IResult> CreateEntitiesAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<CreateEntitiesRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new EntitiesResponse(await graph.CreateEntitiesAsync(http.GetCaller(), request.Entities, ct)));
    }

    private static async Task<IResult> CreateRelationsAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<RelationsRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new RelationsResponse(await graph.CreateRelationsAsync(http.GetCaller(), request.Relations, ct)));
    }

    private static async Task<IResult> AddObservationsAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<AddObservationsRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new AddObservationsResponse(await graph.AddObservationsAsync(http.GetCaller(), request.Observations, ct)));
    }

    private static async Task<IResult> DeleteEntitiesAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<DeleteEntitiesRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new DeletedResponse(await graph.DeleteEntitiesAsync(http.GetCaller(), request.EntityNames, ct)));
    }

    private static async Task<IResult> DeleteObservationsAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<DeleteObservationsRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new DeletedResponse(await graph.DeleteObservationsAsync(http.GetCaller(), request.Deletions, ct)));
    }

    private static async Task<IResult> DeleteRelationsAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<RelationsRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new DeletedResponse(await graph.DeleteRelationsAsync(http.GetCaller(), request.Relations, ct)));
    }

    private static async Task<IResult> ReadGraphAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query, "include_invalid");
        return TypedResults.Ok(await graph.ReadGraphAsync(http.GetCaller(), QueryParser.Bool(http.Request.Query, "include_invalid"), ct));
    }

    private static async Task<IResult> SearchAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "query", "limit", "include_invalid");
        return TypedResults.Ok(await graph.SearchAsync(http.GetCaller(), QueryParser.Single(query, "query"), QueryParser.Int(query, "limit"),
            QueryParser.Bool(query, "include_invalid"), ct));
    }

    private static async Task<IResult> OpenNodesAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "names", "include_invalid");
        // names=a,b or names=a&names=b (the repeated form for names that contain commas).
        var values = query["names"];
        List<string?>? names = values.Count switch
        {
            0 => null,
            1 => [.. values.ToString().Split(',')],
            _ => [.. values],
        };
        return TypedResults.Ok(await graph.OpenNodesAsync(http.GetCaller(), names, QueryParser.Bool(query, "include_invalid"), ct));
    }

    private static async Task<IResult> NeighborsAsync(string name, HttpContext http, GraphService graph, CancellationToken ct)
    {
        name = EntityName(http, name);
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "depth", "relation_type", "include_invalid", "limit");
        return TypedResults.Ok(await graph.NeighborsAsync(http.GetCaller(), name, QueryParser.Int(query, "depth"), QueryParser.Single(query, "relation_type"),
            QueryParser.Bool(query, "include_invalid"), ct, QueryParser.Int(query, "limit")));
    }

    private static async Task<IResult> PathAsync(HttpContext http, GraphService graph, CancellationToken ct)
    {
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "from", "to", "include_invalid");
        return TypedResults.Ok(await graph.PathAsync(http.GetCaller(), QueryParser.Single(query, "from"), QueryParser.Single(query, "to"),
            QueryParser.Bool(query, "include_invalid"), ct));
    }

    private static async Task<IResult> MemoriesAsync(string name, HttpContext http, GraphService graph, MemoryService memories, CancellationToken ct)
    {
        name = EntityName(http, name);
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "limit", "cursor");
        var caller = http.GetCaller();
        await graph.ResolveMemoryLinkAsync(caller, name, ct);
        var page = await memories.ListAsync(caller, new MemoryFilter { Entity = name }, QueryParser.Int(query, "limit"), QueryParser.Single(query, "cursor"), ct);
        return TypedResults.Ok(new MemoryListResponse(page.Items, page.NextCursor));
    }

    private static async Task<IResult> HistoryAsync(string name, HttpContext http, GraphService graph, CancellationToken ct)
    {
        name = EntityName(http, name);
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "limit", "cursor");
        var page = await graph.GetHistoryAsync(http.GetCaller(), name, QueryParser.Int(query, "limit"), QueryParser.Single(query, "cursor"), ct);
        return TypedResults.Ok(new GraphHistoryResponse(page.Items, page.NextCursor));
    }

    /// <summary>
    /// The entity's name as sent: a name may hold '/' (sent as <c>%2F</c>, which routing leaves encoded) or be <c>..</c>
    /// (see <see cref="RawPaths"/>), so it is read from the raw target rather than the routed value.
    /// </summary>
    private static string EntityName(HttpContext http, string routed) => RawPaths.Segment(http, EntitiesPrefix, routed, "name");

    private const string EntitiesPrefix = "/v1/graph/entities/";
}

public sealed record CreateEntitiesRequest(IReadOnlyList<NewEntity?>? Entities);

public sealed record RelationsRequest(IReadOnlyList<NewRelation?>? Relations);

public sealed record AddObservationsRequest(IReadOnlyList<ObservationAddition?>? Observations);

public sealed record DeleteEntitiesRequest(IReadOnlyList<string?>? EntityNames);

public sealed record DeleteObservationsRequest(IReadOnlyList<ObservationDeletion?>? Deletions);

public sealed record EntitiesResponse(IReadOnlyList<Entity> Entities);

public sealed record RelationsResponse(IReadOnlyList<Relation> Relations);

public sealed record AddObservationsResponse(IReadOnlyList<ObservationsAdded> Results);

public sealed record DeletedResponse(int Deleted);

public sealed record GraphHistoryResponse(IReadOnlyList<GraphHistoryEntry> Items, string? NextCursor);
