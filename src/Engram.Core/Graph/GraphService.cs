using Engram.Core.Common;
using Engram.Core.Security;

namespace Engram.Core.Graph;

/// <summary>
/// The only entry to the knowledge graph (REST and the CLI's in-process mode both call it): the
/// MCP reference memory server's operations with Engram's validation, tenancy and history, plus
/// traversals (neighbours, shortest path) and lexical search through <see cref="GraphSearchIndex"/>.
/// Each public method checks the caller's role first and then works as the caller's partition
/// (<see cref="ScopeGuard.Partition"/>): a scoped key has a graph of its own under the tenant, which
/// the store and the search index keep apart like any other tenant.
/// </summary>
public sealed class GraphService(IGraphStore store, TimeProvider clock, Operations.WriteGate? gate = null)
{
    public const int DefaultSearchLimit = 50;

    private readonly GraphSearchIndex _index = new(store, clock);

    public Task<IReadOnlyList<Entity>> CreateEntitiesAsync(Caller caller, IReadOnlyList<NewEntity?>? entities, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Write, "write the graph");
        GraphValidator.Batch(entities, "entities");
        var drafts = new List<EntityDraft>(entities!.Count);
        for (var i = 0; i < entities.Count; i++)
        {
            var field = $"entities[{i}]";
            var entity = entities[i] ?? throw new ValidationException(field, $"{field} must be an object");
            var observations = entity.Observations ?? [];
            if (observations.Count > GraphValidator.MaxBatch)
            {
                throw new ValidationException(field + ".observations", $"at most {GraphValidator.MaxBatch} observations per entity");
            }
            drafts.Add(new EntityDraft(
                GraphValidator.Name(entity.Name, field + ".name"),
                GraphValidator.Type(entity.EntityType, field + ".entity_type"),
                observations.Select((o, j) => GraphValidator.Observation(o, $"{field}.observations[{j}]")).ToList()));
        }
        return store.CreateEntitiesAsync(caller, drafts, ct);
    }

    public Task<IReadOnlyList<Relation>> CreateRelationsAsync(Caller caller, IReadOnlyList<NewRelation?>? relations, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Write, "write the graph");
        GraphValidator.Batch(relations, "relations");
        var valid = relations!.Select((r, i) => ToRelation(r, $"relations[{i}]", full: true)).ToList();
        return store.CreateRelationsAsync(caller, valid, ct);
    }

    public Task<IReadOnlyList<ObservationsAdded>> AddObservationsAsync(Caller caller, IReadOnlyList<ObservationAddition?>? additions, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Write, "write the graph");
        GraphValidator.Batch(additions, "observations");
        var valid = new List<(string, IReadOnlyList<Observation>)>(additions!.Count);
        for (var i = 0; i < additions.Count; i++)
        {
            var field = $"observations[{i}]";
            var addition = additions[i] ?? throw new ValidationException(field, $"{field} must be an object");
            GraphValidator.Batch(addition.Contents, field + ".contents");
            valid.Add((GraphValidator.Name(addition.EntityName, field + ".entity_name"),
                addition.Contents!.Select((o, j) => GraphValidator.Observation(o, $"{field}.contents[{j}]")).ToList()));
        }
        return store.AddObservationsAsync(caller, valid, ct);
    }

    public Task<int> DeleteEntitiesAsync(Caller caller, IReadOnlyList<string?>? names, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Write, "delete from the graph");
        GraphValidator.Batch(names, "entity_names");
        return store.DeleteEntitiesAsync(caller, names!.Select((n, i) => GraphValidator.Name(n, $"entity_names[{i}]")).ToList(), ct);
    }

    public Task<int> DeleteObservationsAsync(Caller caller, IReadOnlyList<ObservationDeletion?>? deletions, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Write, "delete from the graph");
        GraphValidator.Batch(deletions, "deletions");
        var valid = new List<(string, IReadOnlyList<string>)>(deletions!.Count);
        for (var i = 0; i < deletions.Count; i++)
        {
            var field = $"deletions[{i}]";
            var deletion = deletions[i] ?? throw new ValidationException(field, $"{field} must be an object");
            GraphValidator.Batch(deletion.Observations, field + ".observations");
            valid.Add((GraphValidator.Name(deletion.EntityName, field + ".entity_name"),
                deletion.Observations!.Select((o, j) => GraphValidator.ObservationText(o, $"{field}.observations[{j}]")).ToList()));
        }
        return store.DeleteObservationsAsync(caller, valid, ct);
    }

    public Task<int> DeleteRelationsAsync(Caller caller, IReadOnlyList<NewRelation?>? relations, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Write, "delete from the graph");
        GraphValidator.Batch(relations, "relations");
        return store.DeleteRelationsAsync(caller, relations!.Select((r, i) => ToRelation(r, $"relations[{i}]", full: false)).ToList(), ct);
    }

    public Task<KnowledgeGraph> ReadGraphAsync(Caller caller, bool includeInvalid = false, CancellationToken ct = default) =>
        store.ReadGraphAsync(Enter(caller, Role.Read, "read the graph"), includeInvalid, ct);

    /// <summary>How many entities and relations the caller's graph holds, from the writer's counts (no read of the graph).</summary>
    public Task<GraphCounts> CountAsync(Caller caller, CancellationToken ct = default) =>
        store.CountGraphAsync(Enter(caller, Role.Read, "read the graph"), ct);

    /// <summary>
    /// The <paramref name="limit"/> most recently created entities (newest first) and the valid relations between them:
    /// a bounded page of the whole graph, for a picture that cannot hold all of a large one.
    /// </summary>
    public async Task<KnowledgeGraph> ReadRecentAsync(Caller caller, int limit, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        var names = await store.ListRecentEntityNamesAsync(caller, limit, ct).ConfigureAwait(false);
        var entities = await store.GetEntitiesAsync(caller, names, includeInvalid: false, ct).ConfigureAwait(false);
        var shown = names.ToHashSet(StringComparer.Ordinal);
        var relations = await store.GetRelationsTouchingAsync(caller, names, includeInvalid: false, ct).ConfigureAwait(false);
        return new KnowledgeGraph(entities, relations.Where(r => shown.Contains(r.From) && shown.Contains(r.To)).ToList());
    }

    /// <summary>
    /// Entities whose name, type or valid observations match <paramref name="query"/> (BM25, best first),
    /// with the relations between them (or, with <see cref="SubgraphRelations.Touching"/>, every relation
    /// touching one of them, as the MCP reference server's search_nodes returns since 2025).
    /// </summary>
    public async Task<KnowledgeGraph> SearchAsync(Caller caller, string? query, int? limit = null, bool includeInvalid = false, CancellationToken ct = default,
        SubgraphRelations relations = SubgraphRelations.Between)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new ValidationException("query", "query is required and must not be blank");
        }
        var max = GraphValidator.Depth(limit, DefaultSearchLimit, GraphValidator.MaxBatch, "limit");
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var failed = false;
        try
        {
            var hits = await _index.SearchAsync(caller.Tenant, query, max, ct).ConfigureAwait(false);
            return await SubgraphAsync(caller, hits.Select(h => h.Name).ToList(), includeInvalid, relations, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (Telemetry.EngramInstruments.IsServerFailure(ex))
        {
            failed = true;
            throw;
        }
        finally
        {
            Telemetry.EngramInstruments.SearchDone(Telemetry.EngramInstruments.Graph, started, failed);
        }
    }

    /// <summary>The named entities (unknown names are left out) and the relations between them (or touching them, see <see cref="SubgraphRelations"/>).</summary>
    public Task<KnowledgeGraph> OpenNodesAsync(Caller caller, IReadOnlyList<string?>? names, bool includeInvalid = false, CancellationToken ct = default,
        SubgraphRelations relations = SubgraphRelations.Between)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        GraphValidator.Batch(names, "names");
        return SubgraphAsync(caller, names!.Select((n, i) => GraphValidator.Name(n, $"names[{i}]")).ToList(), includeInvalid, relations, ct);
    }

    /// <summary>Entities a neighbourhood holds besides its start unless the caller asks for fewer or more.</summary>
    public const int DefaultNeighborLimit = 1_000;

    /// <summary>The most entities one neighbourhood answer holds besides its start.</summary>
    public const int MaxNeighborLimit = 10_000;

    /// <summary>Entries of an entity's history per page unless the caller asks for fewer or more.</summary>
    public const int DefaultHistoryLimit = 1_000;

    /// <summary>The most entries of an entity's history one page holds.</summary>
    public const int MaxHistoryLimit = 10_000;

    /// <summary>
    /// Everything within <paramref name="depth"/> hops of <paramref name="name"/>, following relations in
    /// both directions (breadth first), optionally only relations of <paramref name="relationType"/>: at most
    /// <paramref name="limit"/> entities besides the start (the first reached, hop by hop), and the relations among
    /// them; <see cref="KnowledgeGraph.Truncated"/> says more lay within the depth. A hub entity related to tens of
    /// thousands of others made an answer of tens of megabytes, at depth 2 of the whole graph.
    /// </summary>
    public async Task<KnowledgeGraph> NeighborsAsync(Caller caller, string? name, int? depth = null, string? relationType = null,
        bool includeInvalid = false, CancellationToken ct = default, int? limit = null)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        var start = GraphValidator.Name(name, "name");
        var hops = GraphValidator.Depth(depth, 1, GraphValidator.MaxDepth, "depth");
        var most = GraphValidator.Depth(limit, DefaultNeighborLimit, MaxNeighborLimit, "limit");
        var type = relationType is null ? null : GraphValidator.Type(relationType, "relation_type");
        var startEntity = await store.GetEntitiesAsync(caller, [start], includeInvalid, ct).ConfigureAwait(false);
        if (startEntity.Count == 0)
        {
            throw new NotFoundException($"no entity named '{start}'");
        }
        var visited = new List<string> { start };
        var seen = new HashSet<string>(StringComparer.Ordinal) { start };
        var relations = new List<Relation>();
        var taken = new HashSet<(string, string, string)>();
        var frontier = new List<string> { start };
        var truncated = false;
        for (var hop = 0; hop < hops && frontier.Count > 0; hop++)
        {
            var next = new List<string>();
            foreach (var relation in await store.GetRelationsTouchingAsync(caller, frontier, includeInvalid, ct).ConfigureAwait(false))
            {
                if ((type is not null && relation.RelationType != type) || taken.Contains((relation.From, relation.RelationType, relation.To)))
                {
                    continue;
                }
                // A relation is kept when both its ends are in the answer; a new end is taken while there is room.
                var room = true;
                foreach (var end in (ReadOnlySpan<string>)[relation.From, relation.To])
                {
                    if (!seen.Contains(end))
                    {
                        if (visited.Count > most)
                        {
                            room = false;
                            truncated = true;
                            continue;
                        }
                        seen.Add(end);
                        visited.Add(end);
                        next.Add(end);
                    }
                }
                if (room)
                {
                    taken.Add((relation.From, relation.RelationType, relation.To));
                    relations.Add(relation);
                }
            }
            frontier = next;
        }
        var entities = await store.GetEntitiesAsync(caller, visited, includeInvalid, ct).ConfigureAwait(false);
        return new KnowledgeGraph(entities, relations) { Truncated = truncated };
    }

    /// <summary>
    /// A shortest path between two entities (breadth first over relations in both directions, at most
    /// <see cref="GraphValidator.MaxPathLength"/> hops): its entities and relations in path order.
    /// Throws <see cref="NotFoundException"/> when an end does not exist or no path is that short.
    /// </summary>
    public async Task<KnowledgeGraph> PathAsync(Caller caller, string? from, string? to, bool includeInvalid = false, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        var source = GraphValidator.Name(from, "from");
        var target = GraphValidator.Name(to, "to");
        var ends = await store.GetEntitiesAsync(caller, [source, target], includeInvalid, ct).ConfigureAwait(false);
        foreach (var (field, name) in (ReadOnlySpan<(string, string)>)[("from", source), ("to", target)])
        {
            if (!ends.Any(e => e.Name == name))
            {
                throw new NotFoundException($"no entity named '{name}' ({field})");
            }
        }
        var parent = new Dictionary<string, (string Previous, Relation Via)?>(StringComparer.Ordinal) { [source] = null };
        var frontier = new List<string> { source };
        for (var hop = 0; hop < GraphValidator.MaxPathLength && frontier.Count > 0 && !parent.ContainsKey(target); hop++)
        {
            var next = new List<string>();
            var inFrontier = frontier.ToHashSet(StringComparer.Ordinal);
            foreach (var relation in await store.GetRelationsTouchingAsync(caller, frontier, includeInvalid, ct).ConfigureAwait(false))
            {
                foreach (var (here, there) in (ReadOnlySpan<(string, string)>)[(relation.From, relation.To), (relation.To, relation.From)])
                {
                    if (inFrontier.Contains(here) && parent.TryAdd(there, (here, relation)))
                    {
                        next.Add(there);
                    }
                }
            }
            frontier = next;
        }
        if (!parent.ContainsKey(target))
        {
            throw new NotFoundException($"no path from '{source}' to '{target}' within {GraphValidator.MaxPathLength} relations");
        }
        var names = new List<string> { target };
        var relations = new List<Relation>();
        for (var step = parent[target]; step is { } link; step = parent[link.Previous])
        {
            relations.Add(link.Via);
            names.Add(link.Previous);
        }
        names.Reverse();
        relations.Reverse();
        var entities = await store.GetEntitiesAsync(caller, names, includeInvalid, ct).ConfigureAwait(false);
        return new KnowledgeGraph(entities, relations);
    }

    /// <summary>
    /// The names of the entities <paramref name="name"/> denotes when a memory names it: compared
    /// case-insensitively, so there can be several ("alice" and "Alice"). 404 when there is none.
    /// </summary>
    public async Task<IReadOnlyList<string>> ResolveMemoryLinkAsync(Caller caller, string? name, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        var entity = GraphValidator.Name(name, "name");
        var names = await store.FindEntityNamesAsync(caller, Memories.EntityNames.Key(entity), ct).ConfigureAwait(false);
        return names.Count == 0 ? throw new NotFoundException($"no entity named '{entity}'") : names;
    }

    /// <summary>
    /// The changes of an entity, its observations and its relations, oldest first (also after deletion): at most
    /// <paramref name="limit"/> per page; <see cref="GraphHistoryResult.NextCursor"/> continues after the page's last.
    /// </summary>
    public async Task<GraphHistoryResult> GetHistoryAsync(Caller caller, string? name, int? limit = null, string? cursor = null, CancellationToken ct = default)
    {
        caller = Enter(caller, Role.Read, "read the graph");
        var entity = GraphValidator.Name(name, "name");
        var take = GraphValidator.Depth(limit, DefaultHistoryLimit, MaxHistoryLimit, "limit");
        long after = 0;
        if (cursor is not null && (!long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out after) || after < 1))
        {
            throw new ValidationException("cursor", "cursor must be a next_cursor this endpoint returned");
        }
        var page = await store.GetGraphHistoryAsync(caller, entity, after, take, ct).ConfigureAwait(false);
        if (page.Items.Count == 0 && cursor is null)
        {
            throw new NotFoundException($"no entity named '{entity}' has ever existed");
        }
        return new GraphHistoryResult(page.Items, page.Next?.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Checks the role; returns the caller the store and the index see (its partition when scoped).</summary>
    /// <summary>The role check; for a write also the <see cref="Operations.WriteGate"/> (read-only mode, memory budget).</summary>
    private Caller Enter(Caller caller, Role needed, string action)
    {
        var partition = ScopeGuard.Enter(caller, needed, action).Partition();
        if (needed >= Role.Write)
        {
            gate?.Check(action);
        }
        return partition;
    }

    private async Task<KnowledgeGraph> SubgraphAsync(Caller caller, IReadOnlyList<string> names, bool includeInvalid, SubgraphRelations which, CancellationToken ct)
    {
        if (names.Count == 0)
        {
            return KnowledgeGraph.Empty;
        }
        var entities = await store.GetEntitiesAsync(caller, names, includeInvalid, ct).ConfigureAwait(false);
        var inSet = entities.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var relations = (await store.GetRelationsTouchingAsync(caller, inSet, includeInvalid, ct).ConfigureAwait(false))
            .Where(r => which == SubgraphRelations.Touching || (inSet.Contains(r.From) && inSet.Contains(r.To)))
            .ToList();
        return new KnowledgeGraph(entities, relations);
    }

    private static Relation ToRelation(NewRelation? relation, string field, bool full)
    {
        if (relation is null)
        {
            throw new ValidationException(field, $"{field} must be an object");
        }
        if (full)
        {
            GraphValidator.Window(relation.ValidFrom, relation.ValidTo, field);
        }
        return new Relation
        {
            From = GraphValidator.Name(relation.From, field + ".from"),
            To = GraphValidator.Name(relation.To, field + ".to"),
            RelationType = GraphValidator.Type(relation.RelationType, field + ".relation_type"),
            Weight = full ? GraphValidator.Weight(relation.Weight, field + ".weight") : null,
            ValidFrom = full ? relation.ValidFrom : null,
            ValidTo = full ? relation.ValidTo : null,
        };
    }
}
