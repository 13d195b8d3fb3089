using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Memories;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The knowledge graph on the same file, writer and change log as the memories: a graph change and
/// its history entry commit together, and the change log tells the graph index what to reload.
/// </summary>
public sealed partial class SqliteMemoryStore : IGraphStore
{
    private const string RelationColumns = "rid, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at";

    public Task<IReadOnlyList<Entity>> CreateEntitiesAsync(Caller caller, IReadOnlyList<EntityDraft> entities, CancellationToken ct = default) =>
        WriteApartFromKvAsync<IReadOnlyList<Entity>>(c =>
        {
            var now = NowMs;
            var created = new List<Entity>();
            foreach (var draft in entities)
            {
                if (EntityExists(c, caller.Tenant, draft.Name))
                {
                    continue; // MCP semantics: an existing name is skipped, not overwritten
                }
                var seq = AppendGraphChange(c, caller.Tenant, GraphChangeKinds.Entity, draft.Name, ChangeRecord.Upsert, now);
                c.ExecuteNonQuery("INSERT INTO graph_entities(tenant, name, entity_type, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    caller.Tenant, draft.Name, draft.EntityType, now);
                var observations = draft.Observations.DistinctBy(o => o.Content, StringComparer.Ordinal).ToList();
                foreach (var observation in observations)
                {
                    InsertObservation(c, caller.Tenant, draft.Name, observation, now);
                }
                AppendGraphHistory(c, caller, seq, GraphEvents.EntityCreated, now, draft.Name, null,
                    new { entity_type = draft.EntityType, observations });
                created.Add(ToEntity(draft.Name, draft.EntityType, now, now, observations, FromMs(now), includeInvalid: false));
            }
            return created;
        }, ct);

    public Task<IReadOnlyList<Relation>> CreateRelationsAsync(Caller caller, IReadOnlyList<Relation> relations, CancellationToken ct = default) =>
        WriteApartFromKvAsync<IReadOnlyList<Relation>>(c =>
        {
            var now = NowMs;
            var created = new List<Relation>();
            for (var i = 0; i < relations.Count; i++)
            {
                var relation = relations[i];
                foreach (var (field, name) in (ReadOnlySpan<(string, string)>)[("from", relation.From), ("to", relation.To)])
                {
                    if (!EntityExists(c, caller.Tenant, name))
                    {
                        throw new ValidationException($"relations[{i}].{field}", $"no entity named '{name}'; create it before relating it");
                    }
                }
                if (c.ScalarInt64("SELECT 1 FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 AND to_name = ?3 AND relation_type = ?4",
                        caller.Tenant, relation.From, relation.To, relation.RelationType) is not null)
                {
                    continue; // duplicate triple: skipped like the MCP server does
                }
                var stored = relation with { CreatedAt = FromMs(now), Valid = relation.IsValidAt(FromMs(now)) };
                var seq = AppendGraphChange(c, caller.Tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Upsert, now);
                c.ExecuteNonQuery(
                    "INSERT INTO graph_relations(tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    caller.Tenant, relation.From, relation.To, relation.RelationType, relation.Weight, ToMs(relation.ValidFrom), ToMs(relation.ValidTo), now);
                AppendGraphHistory(c, caller, seq, GraphEvents.RelationCreated, now, relation.From, relation.To, stored);
                created.Add(stored);
            }
            return created;
        }, ct);

    public Task<IReadOnlyList<ObservationsAdded>> AddObservationsAsync(Caller caller, IReadOnlyList<(string EntityName, IReadOnlyList<Observation> Observations)> additions, CancellationToken ct = default) =>
        WriteApartFromKvAsync<IReadOnlyList<ObservationsAdded>>(c =>
        {
            var now = NowMs;
            var results = new List<ObservationsAdded>();
            foreach (var (name, observations) in additions)
            {
                if (!EntityExists(c, caller.Tenant, name))
                {
                    throw new NotFoundException($"no entity named '{name}'");
                }
                var added = new List<Observation>();
                foreach (var observation in observations)
                {
                    if (c.ScalarInt64("SELECT 1 FROM graph_observations WHERE tenant = ?1 AND entity_name = ?2 AND content = ?3",
                            caller.Tenant, name, observation.Content) is null)
                    {
                        InsertObservation(c, caller.Tenant, name, observation, now);
                        added.Add(observation);
                    }
                }
                if (added.Count > 0)
                {
                    var seq = AppendGraphChange(c, caller.Tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, now);
                    TouchEntity(c, caller.Tenant, name, now);
                    AppendGraphHistory(c, caller, seq, GraphEvents.ObservationAdded, now, name, null, new { observations = added });
                }
                results.Add(new ObservationsAdded(name, added.Select(o => o.Content).ToList()));
            }
            return results;
        }, ct);

    public Task<int> DeleteEntitiesAsync(Caller caller, IReadOnlyList<string> names, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var now = NowMs;
            var deleted = 0;
            foreach (var name in names.Distinct(StringComparer.Ordinal))
            {
                var row = ReadEntityRow(c, caller.Tenant, name);
                if (row is null)
                {
                    continue;
                }
                // The foreign keys would cascade on their own; deleting the relations here gives each a history entry.
                foreach (var (rid, relation) in ReadRelations(c,
                    $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = ?1 AND (from_name = ?2 OR to_name = ?2)", caller.Tenant, name))
                {
                    DeleteRelationRow(c, caller, rid, relation, now);
                }
                var observations = ReadObservations(c, caller.Tenant, name);
                var seq = AppendGraphChange(c, caller.Tenant, GraphChangeKinds.Entity, name, ChangeRecord.Delete, now);
                c.ExecuteNonQuery("DELETE FROM graph_entities WHERE tenant = ?1 AND name = ?2", caller.Tenant, name);
                AppendGraphHistory(c, caller, seq, GraphEvents.EntityDeleted, now, name, null,
                    new { entity_type = row.Value.Type, observations });
                deleted++;
            }
            return deleted;
        }, ct);

    public Task<int> DeleteObservationsAsync(Caller caller, IReadOnlyList<(string EntityName, IReadOnlyList<string> Contents)> deletions, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var now = NowMs;
            var total = 0;
            foreach (var (name, contents) in deletions)
            {
                var existing = ReadObservations(c, caller.Tenant, name).ToDictionary(o => o.Content, StringComparer.Ordinal);
                var removed = new List<Observation>();
                foreach (var content in contents.Distinct(StringComparer.Ordinal))
                {
                    if (existing.TryGetValue(content, out var observation))
                    {
                        c.ExecuteNonQuery("DELETE FROM graph_observations WHERE tenant = ?1 AND entity_name = ?2 AND content = ?3", caller.Tenant, name, content);
                        removed.Add(observation);
                    }
                }
                if (removed.Count > 0)
                {
                    var seq = AppendGraphChange(c, caller.Tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, now);
                    TouchEntity(c, caller.Tenant, name, now);
                    AppendGraphHistory(c, caller, seq, GraphEvents.ObservationDeleted, now, name, null, new { observations = removed });
                    total += removed.Count;
                }
            }
            return total;
        }, ct);

    public Task<int> DeleteRelationsAsync(Caller caller, IReadOnlyList<Relation> relations, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var now = NowMs;
            var total = 0;
            foreach (var wanted in relations)
            {
                foreach (var (rid, relation) in ReadRelations(c,
                    $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 AND to_name = ?3 AND relation_type = ?4",
                    caller.Tenant, wanted.From, wanted.To, wanted.RelationType))
                {
                    DeleteRelationRow(c, caller, rid, relation, now);
                    total++;
                }
            }
            return total;
        }, ct);

    public Task<KnowledgeGraph> ReadGraphAsync(Caller caller, bool includeInvalid, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            var now = FromMs(NowMs);
            var observations = new Dictionary<string, List<Observation>>(StringComparer.Ordinal);
            using (var statement = c.Prepare("SELECT entity_name, content, valid_from, valid_to FROM graph_observations WHERE tenant = ?1 ORDER BY oid"))
            {
                statement.Bind(1, caller.Tenant);
                while (statement.Step())
                {
                    var name = statement.GetText(0);
                    if (!observations.TryGetValue(name, out var list))
                    {
                        observations[name] = list = [];
                    }
                    list.Add(ReadObservation(statement, 1));
                }
            }
            var entities = new List<Entity>();
            using (var statement = c.Prepare("SELECT name, entity_type, created_at, updated_at FROM graph_entities WHERE tenant = ?1 ORDER BY rowid"))
            {
                statement.Bind(1, caller.Tenant);
                while (statement.Step())
                {
                    var name = statement.GetText(0);
                    entities.Add(ToEntity(name, statement.GetText(1), statement.GetInt64(2), statement.GetInt64(3),
                        observations.GetValueOrDefault(name) ?? [], now, includeInvalid));
                }
            }
            var relations = ReadRelations(c, $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = ?1 ORDER BY rid", caller.Tenant)
                .Select(r => MarkValidity(r.Relation, now))
                .Where(r => includeInvalid || r.Valid)
                .ToList();
            return new KnowledgeGraph(entities, relations);
        }, ct).AsTask();

    public Task<GraphCounts> CountGraphAsync(Caller caller, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            long entities = 0, relations = 0;
            using var statement = c.Prepare("SELECT kind, SUM(n) FROM row_counts WHERE tenant = ?1 AND kind IN ('entity', 'relation') GROUP BY kind");
            statement.BindAll([caller.Tenant]);
            while (statement.Step())
            {
                if (statement.GetText(0) == "entity")
                {
                    entities = statement.GetInt64(1);
                }
                else
                {
                    relations = statement.GetInt64(1);
                }
            }
            return new GraphCounts(entities, relations);
        }, ct).AsTask();

    public Task<IReadOnlyList<string>> ListRecentEntityNamesAsync(Caller caller, int limit, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<string>>(c =>
        {
            var names = new List<string>(Math.Min(limit, 1024));
            using var statement = c.Prepare("SELECT name FROM graph_entities WHERE tenant = ?1 ORDER BY rowid DESC LIMIT ?2");
            statement.BindAll([caller.Tenant, (long)limit]);
            while (statement.Step())
            {
                names.Add(statement.GetText(0));
            }
            return names;
        }, ct).AsTask();

    public Task<IReadOnlyList<string>> FindEntityNamesAsync(Caller caller, string nameKey, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<string>>(c =>
        {
            // SQLite's lower() and NOCASE fold ASCII only, so the fold is compared here, over the
            // tenant's part of the primary key: one pass over its entity names.
            var names = new List<string>();
            using var statement = c.Prepare("SELECT name FROM graph_entities WHERE tenant = ?1");
            statement.BindAll([caller.Tenant]);
            while (statement.Step())
            {
                var name = statement.GetText(0);
                if (EntityNames.Key(name) == nameKey)
                {
                    names.Add(name);
                }
            }
            return names;
        }, ct).AsTask();

    public Task<IReadOnlyList<Entity>> GetEntitiesAsync(Caller caller, IReadOnlyCollection<string> names, bool includeInvalid, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<Entity>>(c =>
        {
            var now = FromMs(NowMs);
            var entities = new List<Entity>(names.Count);
            foreach (var name in names.Distinct(StringComparer.Ordinal))
            {
                if (ReadEntityRow(c, caller.Tenant, name) is { } row)
                {
                    entities.Add(ToEntity(name, row.Type, row.CreatedAt, row.UpdatedAt, ReadObservations(c, caller.Tenant, name), now, includeInvalid));
                }
            }
            return entities;
        }, ct).AsTask();

    public Task<IReadOnlyList<Relation>> GetRelationsTouchingAsync(Caller caller, IReadOnlyCollection<string> names, bool includeInvalid, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<Relation>>(c =>
        {
            var now = FromMs(NowMs);
            var seen = new HashSet<long>();
            var relations = new List<(long Rid, Relation Relation)>();
            foreach (var name in names)
            {
                // Two indexed lookups (from side, to side) rather than an OR that would scan.
                foreach (var (rid, relation) in ReadRelations(c,
                    $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 UNION ALL " +
                    $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = ?1 AND to_name = ?2", caller.Tenant, name))
                {
                    var marked = MarkValidity(relation, now);
                    if ((includeInvalid || marked.Valid) && seen.Add(rid))
                    {
                        relations.Add((rid, marked));
                    }
                }
            }
            // Creation order, as the whole graph lists them, whatever order the names came in.
            return relations.OrderBy(r => r.Rid).Select(r => r.Relation).ToList();
        }, ct).AsTask();

    public Task<GraphHistoryPage> GetGraphHistoryAsync(Caller caller, string name, long afterHid, int limit, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            var entries = new List<GraphHistoryEntry>();
            using var statement = c.Prepare(
                "SELECT seq, event, actor, at, entity_name, changes, hid FROM graph_history WHERE tenant = ?1 AND (entity_name = ?2 OR other_name = ?2) AND hid > ?3 "
                + "ORDER BY hid LIMIT ?4");
            statement.BindAll([caller.Tenant, name, afterHid, limit + 1L]);
            long last = 0;
            while (statement.Step())
            {
                if (entries.Count == limit)
                {
                    return new GraphHistoryPage(entries, last); // one more row than the page: a next page exists
                }
                entries.Add(ReadGraphHistory(statement));
                last = statement.GetInt64(6);
            }
            return new GraphHistoryPage(entries, null);
        }, ct).AsTask();

    public Task<IReadOnlyList<TenantEntity>> GetEntitiesForIndexAsync(IReadOnlyList<(string Tenant, string Name)> keys, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<TenantEntity>>(c =>
        {
            var found = new List<TenantEntity>(keys.Count);
            foreach (var (tenant, name) in keys)
            {
                if (ReadEntityRow(c, tenant, name) is { } row)
                {
                    found.Add(new TenantEntity(tenant, name, row.Type, ReadObservations(c, tenant, name)));
                }
            }
            return found;
        }, ct).AsTask();

    private static string RelationKey(Relation relation) => $"{relation.From}\u001f{relation.RelationType}\u001f{relation.To}";

    private static bool EntityExists(SqliteConnection c, string tenant, string name) =>
        c.ScalarInt64("SELECT 1 FROM graph_entities WHERE tenant = ?1 AND name = ?2", tenant, name) is not null;

    private static (string Type, long CreatedAt, long UpdatedAt)? ReadEntityRow(SqliteConnection c, string tenant, string name)
    {
        using var statement = c.Prepare("SELECT entity_type, created_at, updated_at FROM graph_entities WHERE tenant = ?1 AND name = ?2");
        statement.BindAll([tenant, name]);
        return statement.Step() ? (statement.GetText(0), statement.GetInt64(1), statement.GetInt64(2)) : null;
    }

    private static List<Observation> ReadObservations(SqliteConnection c, string tenant, string name)
    {
        var observations = new List<Observation>();
        using var statement = c.Prepare("SELECT content, valid_from, valid_to FROM graph_observations WHERE tenant = ?1 AND entity_name = ?2 ORDER BY oid");
        statement.BindAll([tenant, name]);
        while (statement.Step())
        {
            observations.Add(ReadObservation(statement, 0));
        }
        return observations;
    }

    private static List<(long Rid, Relation Relation)> ReadRelations(SqliteConnection c, string sql, params ReadOnlySpan<object?> parameters)
    {
        var relations = new List<(long, Relation)>();
        using var statement = c.Prepare(sql);
        statement.BindAll(parameters);
        while (statement.Step())
        {
            relations.Add(ReadRelation(statement));
        }
        return relations;
    }

    private static void InsertObservation(SqliteConnection c, string tenant, string name, Observation observation, long now) =>
        c.ExecuteNonQuery(
            "INSERT INTO graph_observations(tenant, entity_name, content, valid_from, valid_to, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            tenant, name, observation.Content, ToMs(observation.ValidFrom), ToMs(observation.ValidTo), now);

    private static void TouchEntity(SqliteConnection c, string tenant, string name, long now) =>
        c.ExecuteNonQuery("UPDATE graph_entities SET updated_at = ?3 WHERE tenant = ?1 AND name = ?2", tenant, name, now);

    private static void DeleteRelationRow(SqliteConnection c, Caller caller, long rid, Relation relation, long now)
    {
        var seq = AppendGraphChange(c, caller.Tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Delete, now);
        c.ExecuteNonQuery("DELETE FROM graph_relations WHERE rid = ?1", rid);
        AppendGraphHistory(c, caller, seq, GraphEvents.RelationDeleted, now, relation.From, relation.To, relation);
    }

    private static long AppendGraphChange(SqliteConnection c, string tenant, string kind, string entityId, string op, long now)
    {
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)", tenant, kind, entityId, op, now);
        return c.LastInsertRowId;
    }

    private static void AppendGraphHistory<T>(SqliteConnection c, Caller caller, long seq, string historyEvent, long now, string entityName, string? otherName, T changes) =>
        c.ExecuteNonQuery(
            "INSERT INTO graph_history(tenant, seq, event, actor, at, entity_name, other_name, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            caller.Tenant, seq, historyEvent, caller.Actor, now, entityName, otherName, JsonSerializer.Serialize(changes, EngramJson.Options));
}
