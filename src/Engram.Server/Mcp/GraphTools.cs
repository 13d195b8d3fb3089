using System.ComponentModel;
using Engram.Core.Common;
using Engram.Core.Graph;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// The knowledge-graph tools under the names, camelCase arguments and result shapes of the MCP reference
/// memory server (@modelcontextprotocol/server-memory), so prompts and clients written for it work
/// unchanged. Each calls <see cref="GraphService"/> as the REST endpoints in Http/GraphEndpoints do; the
/// rules (validation, duplicates, unknown entities) are Engram's, and where they differ from the
/// reference server the tool's description says so.
/// </summary>
[McpServerToolType]
internal sealed class GraphTools(GraphService graph, IMcpCallerSource callers)
{
    [McpServerTool(Name = "create_entities", Title = "Create entities", ReadOnly = false, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(CreatedEntitiesResult))]
    [Description("Add entities (people, organizations, projects, events…) to the knowledge graph, each with a type and observations. " +
        "A name that exists already is skipped, not changed; the result lists only the entities created. " +
        "Unlike the reference memory server, an entity never holds the same observation twice and names may not be blank.")]
    public Task<CallToolResult> CreateEntitiesAsync(
        [Description("The entities to create (up to 1000).")] IReadOnlyList<EntityArgument?> entities,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () =>
        {
            var created = await graph.CreateEntitiesAsync(callers.Current, [.. entities.Select(e => e?.ToCore())], ct);
            return McpResults.Ok(new CreatedEntitiesResult([.. created.Select(GraphEntity.Of)]));
        });

    [McpServerTool(Name = "create_relations", Title = "Create relations", ReadOnly = false, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(CreatedRelationsResult))]
    [Description("Relate entities of the knowledge graph: from -[relationType]-> to, with the relation in active voice (Alice works_at Acme). " +
        "A relation that exists already (same from, to and relationType) is skipped; the result lists only those created. " +
        "Unlike the reference memory server, both ends must be existing entities: a relation naming an unknown entity is refused " +
        "(create the entity first) and then none of the batch is stored.")]
    public Task<CallToolResult> CreateRelationsAsync(
        [Description("The relations to create (up to 1000).")] IReadOnlyList<RelationArgument?> relations,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () =>
        {
            var created = await graph.CreateRelationsAsync(callers.Current, [.. relations.Select(r => r?.ToCore())], ct);
            return McpResults.Ok(new CreatedRelationsResult([.. created.Select(GraphRelation.Of)]));
        });

    [McpServerTool(Name = "add_observations", Title = "Add observations", ReadOnly = false, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(AddedObservationsResult))]
    [Description("Record new facts about existing entities. Observations an entity already has are skipped; the result lists, per entity, " +
        "the ones added. An unknown entity name is an error, and then nothing of the call is stored.")]
    public Task<CallToolResult> AddObservationsAsync(
        [Description("Per entity, the observations to add (up to 1000 entries).")] IReadOnlyList<ObservationsArgument?> observations,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () =>
        {
            var added = await graph.AddObservationsAsync(callers.Current, [.. observations.Select(o => o?.ToCore())], ct);
            return McpResults.Ok(new AddedObservationsResult([.. added.Select(a => new AddedObservations(a.EntityName, a.AddedObservations))]));
        });

    [McpServerTool(Name = "delete_entities", Title = "Delete entities", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(DeletionResult))]
    [Description("Remove entities from the knowledge graph with their observations and every relation to or from them. " +
        "Names that do not exist are ignored. Engram keeps each deleted entity in the graph's history.")]
    public Task<CallToolResult> DeleteEntitiesAsync(
        [Description("Names of the entities to delete.")] IReadOnlyList<string?> entityNames,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () =>
        {
            await graph.DeleteEntitiesAsync(callers.Current, entityNames, ct);
            return McpResults.Ok(new DeletionResult(true, "Entities deleted successfully"));
        });

    [McpServerTool(Name = "delete_observations", Title = "Delete observations", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(DeletionResult))]
    [Description("Remove observations from entities by their exact text. Unknown entities and texts are ignored.")]
    public Task<CallToolResult> DeleteObservationsAsync(
        [Description("Per entity, the observations to remove.")] IReadOnlyList<ObservationDeletionArgument?> deletions,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () =>
        {
            await graph.DeleteObservationsAsync(callers.Current, [.. deletions.Select(d => d?.ToCore())], ct);
            return McpResults.Ok(new DeletionResult(true, "Observations deleted successfully"));
        });

    [McpServerTool(Name = "delete_relations", Title = "Delete relations", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(DeletionResult))]
    [Description("Remove relations, each named by from, to and relationType exactly. Relations that do not exist are ignored.")]
    public Task<CallToolResult> DeleteRelationsAsync(
        [Description("The relations to delete.")] IReadOnlyList<RelationArgument?> relations,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () =>
        {
            await graph.DeleteRelationsAsync(callers.Current, [.. relations.Select(r => r?.ToCore())], ct);
            return McpResults.Ok(new DeletionResult(true, "Relations deleted successfully"));
        });

    [McpServerTool(Name = "read_graph", Title = "Read the knowledge graph", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(GraphResult))]
    [Description("The whole knowledge graph: every entity with its observations, in creation order, and every relation. " +
        "Observations and relations whose validity period (set over Engram's REST API) has ended are left out. " +
        "Takes no arguments: unlike the reference memory server, which ignores them, Engram refuses any (search_nodes and open_nodes read part of the graph).")]
    public async Task<CallToolResult> ReadGraphAsync(RequestContext<CallToolRequestParams> request, CancellationToken ct = default)
    {
        // An argument here is a caller expecting a filter read_graph does not have; answering with the whole graph would hide that.
        if (request.Params?.Arguments is { Count: > 0 } arguments)
        {
            throw new ArgumentException($"read_graph takes no arguments (got '{string.Join("', '", arguments.Keys)}'); " +
                "to read part of the graph use search_nodes (query) or open_nodes (names)");
        }
        return McpResults.Ok(GraphResult.Of(await graph.ReadGraphAsync(callers.Current, includeInvalid: false, ct)));
    }

    [McpServerTool(Name = "search_nodes", Title = "Search the knowledge graph", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(GraphResult))]
    [Description("Find entities whose name, type or observations match the query, with every relation touching them. " +
        "Unlike the reference memory server, which keeps entities containing the query as a substring, Engram matches words " +
        "(case-insensitive, with simple stemming: 'engineers' finds 'engineer') and ranks the best matches first, at most 50 entities; " +
        "a blank query is an error.")]
    public Task<CallToolResult> SearchNodesAsync(
        [Description("Words to look for in entity names, types and observations.")] string query,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () => McpResults.Ok(GraphResult.Of(
            await graph.SearchAsync(callers.Current, query, ct: ct, relations: SubgraphRelations.Touching))));

    [McpServerTool(Name = "open_nodes", Title = "Open entities", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(GraphResult))]
    [Description("Read entities by exact name, in the order named, with every relation touching them. Names that do not exist are left out.")]
    public Task<CallToolResult> OpenNodesAsync(
        [Description("Names of the entities to read.")] IReadOnlyList<string?> names,
        CancellationToken ct = default) =>
        GraphToolErrors.InReferenceTermsAsync(async () => McpResults.Ok(GraphResult.Of(
            await graph.OpenNodesAsync(callers.Current, names, ct: ct, relations: SubgraphRelations.Touching))));
}

/// <summary>
/// GraphService names fields as the REST API spells them (entities[0].entity_type); a graph tool's caller
/// wrote entityType, so its errors name the fields that way.
/// </summary>
internal static class GraphToolErrors
{
    private static readonly (string RestName, string McpName)[] Fields =
    [
        ("entity_names", "entityNames"), ("entity_type", "entityType"), ("entity_name", "entityName"), ("relation_type", "relationType"),
    ];

    public static async Task<CallToolResult> InReferenceTermsAsync(Func<Task<CallToolResult>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (ValidationException v)
        {
            throw new ValidationException(Camel(v.Field), Camel(v.Message));
        }
    }

    internal static string Camel(string text)
    {
        foreach (var (rest, mcp) in Fields)
        {
            text = text.Replace(rest, mcp, StringComparison.Ordinal);
        }
        return text;
    }
}
