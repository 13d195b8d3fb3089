using System.Globalization;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Server.Http;

namespace Engram.Cli.Client;

internal sealed partial class HttpMemoryClient
{
    public Task<EntitiesResponse> CreateEntitiesAsync(IReadOnlyList<NewEntity?> entities, CancellationToken ct) =>
        PostGraphAsync<EntitiesResponse>("v1/graph/entities", new CreateEntitiesRequest(entities), ct);

    public Task<RelationsResponse> CreateRelationsAsync(IReadOnlyList<NewRelation?> relations, CancellationToken ct) =>
        PostGraphAsync<RelationsResponse>("v1/graph/relations", new RelationsRequest(relations), ct);

    public Task<AddObservationsResponse> AddObservationsAsync(IReadOnlyList<ObservationAddition?> additions, CancellationToken ct) =>
        PostGraphAsync<AddObservationsResponse>("v1/graph/observations", new AddObservationsRequest(additions), ct);

    public Task<DeletedResponse> DeleteEntitiesAsync(IReadOnlyList<string?> names, CancellationToken ct) =>
        PostGraphAsync<DeletedResponse>("v1/graph/entities/delete", new DeleteEntitiesRequest(names), ct);

    public Task<KnowledgeGraph> ReadGraphAsync(bool includeInvalid, CancellationToken ct) =>
        GetGraphAsync("v1/graph", [], includeInvalid, ct);

    public Task<KnowledgeGraph> OpenNodesAsync(IReadOnlyList<string?> names, bool includeInvalid, CancellationToken ct) =>
        // The repeated form, so names holding commas survive.
        GetGraphAsync("v1/graph/nodes", [.. names.Select(n => ("names", n ?? ""))], includeInvalid, ct);

    public Task<KnowledgeGraph> SearchGraphAsync(string query, bool includeInvalid, CancellationToken ct) =>
        GetGraphAsync("v1/graph/search", [("query", query)], includeInvalid, ct);

    public Task<KnowledgeGraph> NeighborsAsync(string name, int? depth, string? relationType, bool includeInvalid, int? limit, CancellationToken ct)
    {
        var query = new List<(string, string)>();
        if (depth is { } hops)
        {
            query.Add(("depth", hops.ToString(CultureInfo.InvariantCulture)));
        }
        if (relationType is not null)
        {
            query.Add(("relation_type", relationType));
        }
        if (limit is { } most)
        {
            query.Add(("limit", most.ToString(CultureInfo.InvariantCulture)));
        }
        return GetGraphAsync($"v1/graph/entities/{Uri.EscapeDataString(name)}/neighbors", query, includeInvalid, ct);
    }

    public Task<KnowledgeGraph> PathAsync(string from, string to, bool includeInvalid, CancellationToken ct) =>
        GetGraphAsync("v1/graph/path", [("from", from), ("to", to)], includeInvalid, ct);

    private async Task<T> PostGraphAsync<T>(string path, object body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent(body) };
        return Deserialize<T>(await SendAsync(request, ct), EngramJson.Options);
    }

    private async Task<KnowledgeGraph> GetGraphAsync(string path, List<(string Key, string Value)> query, bool includeInvalid, CancellationToken ct)
    {
        if (includeInvalid)
        {
            query.Add(("include_invalid", "true"));
        }
        var text = query.Count == 0 ? "" : "?" + string.Join('&', query.Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value)}"));
        using var request = new HttpRequestMessage(HttpMethod.Get, path + text);
        return Deserialize<KnowledgeGraph>(await SendAsync(request, ct), EngramJson.Options);
    }
}
