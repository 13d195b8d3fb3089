using Engram.Core.Graph;
using Engram.Server.Http;

namespace Engram.Cli.Client;

internal sealed partial class InProcessMemoryClient
{
    private GraphService? _graph;

    // The graph index is built on the first search only; the other operations go straight to the store.
    private GraphService Graph => _graph ??= new GraphService((Core.Graph.IGraphStore)_store, TimeProvider.System, Gate);

    public async Task<EntitiesResponse> CreateEntitiesAsync(IReadOnlyList<NewEntity?> entities, CancellationToken ct) =>
        new(await Graph.CreateEntitiesAsync(Caller, entities, ct));

    public async Task<RelationsResponse> CreateRelationsAsync(IReadOnlyList<NewRelation?> relations, CancellationToken ct) =>
        new(await Graph.CreateRelationsAsync(Caller, relations, ct));

    public async Task<AddObservationsResponse> AddObservationsAsync(IReadOnlyList<ObservationAddition?> additions, CancellationToken ct) =>
        new(await Graph.AddObservationsAsync(Caller, additions, ct));

    public async Task<DeletedResponse> DeleteEntitiesAsync(IReadOnlyList<string?> names, CancellationToken ct) =>
        new(await Graph.DeleteEntitiesAsync(Caller, names, ct));

    public Task<KnowledgeGraph> ReadGraphAsync(bool includeInvalid, CancellationToken ct) => Graph.ReadGraphAsync(Caller, includeInvalid, ct);

    public Task<KnowledgeGraph> OpenNodesAsync(IReadOnlyList<string?> names, bool includeInvalid, CancellationToken ct) =>
        Graph.OpenNodesAsync(Caller, names, includeInvalid, ct);

    public Task<KnowledgeGraph> SearchGraphAsync(string query, bool includeInvalid, CancellationToken ct) =>
        Graph.SearchAsync(Caller, query, null, includeInvalid, ct);

    public Task<KnowledgeGraph> NeighborsAsync(string name, int? depth, string? relationType, bool includeInvalid, int? limit, CancellationToken ct) =>
        Graph.NeighborsAsync(Caller, name, depth, relationType, includeInvalid, ct, limit);

    public Task<KnowledgeGraph> PathAsync(string from, string to, bool includeInvalid, CancellationToken ct) =>
        Graph.PathAsync(Caller, from, to, includeInvalid, ct);
}
