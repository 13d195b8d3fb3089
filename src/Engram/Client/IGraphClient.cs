using Engram.Core.Graph;
using Engram.Server.Http;

namespace Engram.Cli.Client;

/// <summary>The knowledge-graph operations the <c>engram graph</c> commands need; same two backends as the memory commands.</summary>
internal interface IGraphClient
{
    Task<EntitiesResponse> CreateEntitiesAsync(IReadOnlyList<NewEntity?> entities, CancellationToken ct);

    Task<RelationsResponse> CreateRelationsAsync(IReadOnlyList<NewRelation?> relations, CancellationToken ct);

    Task<AddObservationsResponse> AddObservationsAsync(IReadOnlyList<ObservationAddition?> additions, CancellationToken ct);

    Task<DeletedResponse> DeleteEntitiesAsync(IReadOnlyList<string?> names, CancellationToken ct);

    Task<KnowledgeGraph> ReadGraphAsync(bool includeInvalid, CancellationToken ct);

    Task<KnowledgeGraph> OpenNodesAsync(IReadOnlyList<string?> names, bool includeInvalid, CancellationToken ct);

    Task<KnowledgeGraph> SearchGraphAsync(string query, bool includeInvalid, CancellationToken ct);

    Task<KnowledgeGraph> NeighborsAsync(string name, int? depth, string? relationType, bool includeInvalid, int? limit, CancellationToken ct);

    Task<KnowledgeGraph> PathAsync(string from, string to, bool includeInvalid, CancellationToken ct);
}
