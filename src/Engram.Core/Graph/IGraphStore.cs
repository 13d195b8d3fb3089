using Engram.Core.Common;
using Engram.Core.Storage;

namespace Engram.Core.Graph;

/// <summary>
/// The knowledge graph's part of the system of record. Same contract as <see cref="IMemoryStore"/>:
/// every method is confined to <see cref="Caller.Tenant"/>; every change writes its rows, a history
/// entry (with the actor) and a change-log entry (entity kinds <c>entity</c> / <c>relation</c>) in one
/// transaction, and a batch is all or nothing. Inputs arrive validated by <see cref="GraphService"/>.
/// Reads leave out observations and relations whose validity window does not hold now unless
/// <c>includeInvalid</c>.
/// </summary>
public interface IGraphStore
{
    /// <summary>Creates the entities whose names are new (existing names, and repeats in the batch, are skipped); returns those created.</summary>
    Task<IReadOnlyList<Entity>> CreateEntitiesAsync(Caller caller, IReadOnlyList<EntityDraft> entities, CancellationToken ct = default);

    /// <summary>
    /// Creates the relations not yet stored (same from, to and type = duplicate, skipped); returns those created.
    /// Throws <see cref="ValidationException"/> naming <c>relations[i].from</c> / <c>.to</c> when an endpoint does not exist.
    /// </summary>
    Task<IReadOnlyList<Relation>> CreateRelationsAsync(Caller caller, IReadOnlyList<Relation> relations, CancellationToken ct = default);

    /// <summary>Adds the observations an entity does not have yet; throws <see cref="NotFoundException"/> for an unknown entity.</summary>
    Task<IReadOnlyList<ObservationsAdded>> AddObservationsAsync(Caller caller, IReadOnlyList<(string EntityName, IReadOnlyList<Observation> Observations)> additions, CancellationToken ct = default);

    /// <summary>Deletes entities with their observations and every relation touching them; unknown names are ignored. Returns how many entities went.</summary>
    Task<int> DeleteEntitiesAsync(Caller caller, IReadOnlyList<string> names, CancellationToken ct = default);

    /// <summary>Deletes observations by content; unknown entities or contents are ignored. Returns how many went.</summary>
    Task<int> DeleteObservationsAsync(Caller caller, IReadOnlyList<(string EntityName, IReadOnlyList<string> Contents)> deletions, CancellationToken ct = default);

    /// <summary>Deletes relations by (from, to, relation_type); unknown ones are ignored. Returns how many went.</summary>
    Task<int> DeleteRelationsAsync(Caller caller, IReadOnlyList<Relation> relations, CancellationToken ct = default);

    Task<KnowledgeGraph> ReadGraphAsync(Caller caller, bool includeInvalid, CancellationToken ct = default);

    /// <summary>The tenant's entities and relations (valid now or not) as the writer's counts keep them (<c>row_counts</c>): no scan of the graph.</summary>
    Task<GraphCounts> CountGraphAsync(Caller caller, CancellationToken ct = default);

    /// <summary>Names of the tenant's most recently created entities, newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<string>> ListRecentEntityNamesAsync(Caller caller, int limit, CancellationToken ct = default);

    /// <summary>The named entities that exist, in the order given.</summary>
    Task<IReadOnlyList<Entity>> GetEntitiesAsync(Caller caller, IReadOnlyCollection<string> names, bool includeInvalid, CancellationToken ct = default);

    /// <summary>
    /// Names of this tenant's entities whose <see cref="Memories.EntityNames.Key"/> is <paramref name="nameKey"/>:
    /// how a memory's entity name finds graph entities (case-insensitively; graph names themselves are case-sensitive).
    /// </summary>
    Task<IReadOnlyList<string>> FindEntityNamesAsync(Caller caller, string nameKey, CancellationToken ct = default);

    /// <summary>Relations with either end among <paramref name="names"/> (one hop of a traversal), in creation order.</summary>
    Task<IReadOnlyList<Relation>> GetRelationsTouchingAsync(Caller caller, IReadOnlyCollection<string> names, bool includeInvalid, CancellationToken ct = default);

    /// <summary>
    /// The changes of an entity, its observations and the relations touching it, oldest first, kept after deletion: at most
    /// <paramref name="limit"/> after position <paramref name="afterHid"/> (0: from the first), and where the next page starts.
    /// </summary>
    Task<GraphHistoryPage> GetGraphHistoryAsync(Caller caller, string name, long afterHid, int limit, CancellationToken ct = default);

    /// <summary>The entities named by change-log entries, in any tenant, with all observations (for the lexical index). Missing ones are left out.</summary>
    Task<IReadOnlyList<TenantEntity>> GetEntitiesForIndexAsync(IReadOnlyList<(string Tenant, string Name)> keys, CancellationToken ct = default);

    Task<long> GetLastSeqAsync(CancellationToken ct = default);

    Task<IReadOnlyList<ChangeRecord>> ReadChangesAsync(long afterSeq, int max, CancellationToken ct = default);

    /// <inheritdoc cref="IMemoryStore.ReadChangesAsync(long, int, string, CancellationToken)"/>
    Task<ChangePage> ReadChangesAsync(long afterSeq, int max, string entity, CancellationToken ct = default);
}

/// <summary>How many entities and relations a tenant's graph holds (relations past their validity included).</summary>
public sealed record GraphCounts(long Entities, long Relations);

/// <summary>A validated entity to create.</summary>
public sealed record EntityDraft(string Name, string EntityType, IReadOnlyList<Observation> Observations);

/// <summary>An entity with every observation (valid or not) and its tenant: what the graph index loads.</summary>
public sealed record TenantEntity(string Tenant, string Name, string EntityType, IReadOnlyList<Observation> Observations);

/// <summary>The change-log entity kinds the graph writes.</summary>
public static class GraphChangeKinds
{
    public const string Entity = "entity";
    public const string Relation = "relation";
}
