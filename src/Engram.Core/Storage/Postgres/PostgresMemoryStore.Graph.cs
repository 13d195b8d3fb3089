using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>The knowledge graph on the same database and change log as the memories, as the SQLite store keeps it.</summary>
public sealed partial class PostgresMemoryStore : IGraphStore
{
    private const string RelationColumns = "rid, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at";

    public Task<IReadOnlyList<Entity>> CreateEntitiesAsync(Caller caller, IReadOnlyList<EntityDraft> entities, CancellationToken ct = default) =>
        LoggedAsync<IReadOnlyList<Entity>>(async c =>
        {
            var now = NowMs;
            var created = new List<Entity>();
            foreach (var draft in entities)
            {
                if (await EntityExistsAsync(c, caller.Tenant, draft.Name).ConfigureAwait(false))
                {
                    continue; // MCP semantics: an existing name is skipped, not overwritten
                }
                var seq = await AppendChangeAsync(c, caller.Tenant, GraphChangeKinds.Entity, draft.Name, ChangeRecord.Upsert, now).ConfigureAwait(false);
                await using (var insert = Command(c, "INSERT INTO graph_entities(tenant, name, entity_type, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
                    .Text(caller.Tenant).Text(draft.Name).Text(draft.EntityType).Int(now))
                {
                    await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
                var observations = draft.Observations.DistinctBy(o => o.Content, StringComparer.Ordinal).ToList();
                foreach (var observation in observations)
                {
                    await InsertObservationAsync(c, caller.Tenant, draft.Name, observation, now).ConfigureAwait(false);
                }
                await AppendGraphHistoryAsync(c, caller, seq, GraphEvents.EntityCreated, now, draft.Name, null,
                    new { entity_type = draft.EntityType, observations }).ConfigureAwait(false);
                created.Add(ToEntity(draft.Name, draft.EntityType, now, now, observations, FromMs(now), includeInvalid: false));
            }
            return created;
        }, ct);

    public Task<IReadOnlyList<Relation>> CreateRelationsAsync(Caller caller, IReadOnlyList<Relation> relations, CancellationToken ct = default) =>
        LoggedAsync<IReadOnlyList<Relation>>(async c =>
        {
            var now = NowMs;
            var created = new List<Relation>();
            for (var i = 0; i < relations.Count; i++)
            {
                var relation = relations[i];
                foreach (var (field, name) in new[] { ("from", relation.From), ("to", relation.To) })
                {
                    if (!await EntityExistsAsync(c, caller.Tenant, name).ConfigureAwait(false))
                    {
                        throw new ValidationException($"relations[{i}].{field}", $"no entity named '{name}'; create it before relating it");
                    }
                }
                await using (var exists = Command(c, "SELECT 1 FROM graph_relations WHERE tenant = $1 AND from_name = $2 AND to_name = $3 AND relation_type = $4")
                    .Text(caller.Tenant).Text(relation.From).Text(relation.To).Text(relation.RelationType))
                {
                    if (await exists.ExecuteScalarAsync().ConfigureAwait(false) is not null)
                    {
                        continue; // duplicate triple: skipped like the MCP server does
                    }
                }
                var stored = relation with { CreatedAt = FromMs(now), Valid = relation.IsValidAt(FromMs(now)) };
                var seq = await AppendChangeAsync(c, caller.Tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Upsert, now).ConfigureAwait(false);
                await using (var insert = Command(c,
                    "INSERT INTO graph_relations(tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .Text(caller.Tenant).Text(relation.From).Text(relation.To).Text(relation.RelationType).Real(relation.Weight)
                    .Int(ToMs(relation.ValidFrom)).Int(ToMs(relation.ValidTo)).Int(now))
                {
                    await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
                await AppendGraphHistoryAsync(c, caller, seq, GraphEvents.RelationCreated, now, relation.From, relation.To, stored).ConfigureAwait(false);
                created.Add(stored);
            }
            return created;
        }, ct);

    public Task<IReadOnlyList<ObservationsAdded>> AddObservationsAsync(Caller caller, IReadOnlyList<(string EntityName, IReadOnlyList<Observation> Observations)> additions,
        CancellationToken ct = default) =>
        LoggedAsync<IReadOnlyList<ObservationsAdded>>(async c =>
        {
            var now = NowMs;
            var results = new List<ObservationsAdded>();
            foreach (var (name, observations) in additions)
            {
                if (!await EntityExistsAsync(c, caller.Tenant, name).ConfigureAwait(false))
                {
                    throw new NotFoundException($"no entity named '{name}'");
                }
                var added = new List<Observation>();
                foreach (var observation in observations)
                {
                    if (await InsertObservationAsync(c, caller.Tenant, name, observation, now).ConfigureAwait(false))
                    {
                        added.Add(observation);
                    }
                }
                if (added.Count > 0)
                {
                    var seq = await AppendChangeAsync(c, caller.Tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, now).ConfigureAwait(false);
                    await TouchEntityAsync(c, caller.Tenant, name, now).ConfigureAwait(false);
                    await AppendGraphHistoryAsync(c, caller, seq, GraphEvents.ObservationAdded, now, name, null, new { observations = added }).ConfigureAwait(false);
                }
                results.Add(new ObservationsAdded(name, added.Select(o => o.Content).ToList()));
            }
            return results;
        }, ct);

    public Task<int> DeleteEntitiesAsync(Caller caller, IReadOnlyList<string> names, CancellationToken ct = default) =>
        LoggedAsync(async c =>
        {
            var now = NowMs;
            var deleted = 0;
            foreach (var name in names.Distinct(StringComparer.Ordinal))
            {
                if (await ReadEntityRowAsync(c, caller.Tenant, name).ConfigureAwait(false) is not { } row)
                {
                    continue;
                }
                // The foreign keys would cascade on their own; deleting the relations here gives each a history entry.
                foreach (var (rid, relation) in await ReadRelationsAsync(Command(c,
                    $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = $1 AND (from_name = $2 OR to_name = $2) ORDER BY rid")
                    .Text(caller.Tenant).Text(name)).ConfigureAwait(false))
                {
                    await DeleteRelationRowAsync(c, caller, rid, relation, now).ConfigureAwait(false);
                }
                var observations = await ReadObservationsAsync(c, caller.Tenant, name).ConfigureAwait(false);
                var seq = await AppendChangeAsync(c, caller.Tenant, GraphChangeKinds.Entity, name, ChangeRecord.Delete, now).ConfigureAwait(false);
                await using (var delete = Command(c, "DELETE FROM graph_entities WHERE tenant = $1 AND name = $2").Text(caller.Tenant).Text(name))
                {
                    await delete.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
                await AppendGraphHistoryAsync(c, caller, seq, GraphEvents.EntityDeleted, now, name, null, new { entity_type = row.Type, observations })
                    .ConfigureAwait(false);
                deleted++;
            }
            return deleted;
        }, ct);

    public Task<int> DeleteObservationsAsync(Caller caller, IReadOnlyList<(string EntityName, IReadOnlyList<string> Contents)> deletions, CancellationToken ct = default) =>
        LoggedAsync(async c =>
        {
            var now = NowMs;
            var total = 0;
            foreach (var (name, contents) in deletions)
            {
                var existing = (await ReadObservationsAsync(c, caller.Tenant, name).ConfigureAwait(false)).ToDictionary(o => o.Content, StringComparer.Ordinal);
                var removed = new List<Observation>();
                foreach (var content in contents.Distinct(StringComparer.Ordinal))
                {
                    if (existing.TryGetValue(content, out var observation))
                    {
                        await using var delete = Command(c, "DELETE FROM graph_observations WHERE tenant = $1 AND entity_name = $2 AND content = $3")
                            .Text(caller.Tenant).Text(name).Text(content);
                        await delete.ExecuteNonQueryAsync().ConfigureAwait(false);
                        removed.Add(observation);
                    }
                }
                if (removed.Count > 0)
                {
                    var seq = await AppendChangeAsync(c, caller.Tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, now).ConfigureAwait(false);
                    await TouchEntityAsync(c, caller.Tenant, name, now).ConfigureAwait(false);
                    await AppendGraphHistoryAsync(c, caller, seq, GraphEvents.ObservationDeleted, now, name, null, new { observations = removed }).ConfigureAwait(false);
                    total += removed.Count;
                }
            }
            return total;
        }, ct);

    public Task<int> DeleteRelationsAsync(Caller caller, IReadOnlyList<Relation> relations, CancellationToken ct = default) =>
        LoggedAsync(async c =>
        {
            var now = NowMs;
            var total = 0;
            foreach (var wanted in relations)
            {
                foreach (var (rid, relation) in await ReadRelationsAsync(Command(c,
                    $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = $1 AND from_name = $2 AND to_name = $3 AND relation_type = $4")
                    .Text(caller.Tenant).Text(wanted.From).Text(wanted.To).Text(wanted.RelationType)).ConfigureAwait(false))
                {
                    await DeleteRelationRowAsync(c, caller, rid, relation, now).ConfigureAwait(false);
                    total++;
                }
            }
            return total;
        }, ct);

    public Task<KnowledgeGraph> ReadGraphAsync(Caller caller, bool includeInvalid, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var now = FromMs(NowMs);
            // One snapshot for the three reads, so entities, observations and relations agree.
            await using var transaction = await c.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
            var observations = new Dictionary<string, List<Observation>>(StringComparer.Ordinal);
            await using (var command = Command(c, "SELECT entity_name, content, valid_from, valid_to FROM graph_observations WHERE tenant = $1 ORDER BY oid")
                .Text(caller.Tenant))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var name = reader.GetString(0);
                    if (!observations.TryGetValue(name, out var list))
                    {
                        observations[name] = list = [];
                    }
                    list.Add(ReadObservation(reader, 1));
                }
            }
            var entities = new List<Entity>();
            await using (var command = Command(c, "SELECT name, entity_type, created_at, updated_at FROM graph_entities WHERE tenant = $1 ORDER BY eid")
                .Text(caller.Tenant))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var name = reader.GetString(0);
                    entities.Add(ToEntity(name, reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), observations.GetValueOrDefault(name) ?? [], now, includeInvalid));
                }
            }
            var relations = (await ReadRelationsAsync(Command(c, $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = $1 ORDER BY rid").Text(caller.Tenant))
                    .ConfigureAwait(false))
                .Select(r => MarkValidity(r.Relation, now))
                .Where(r => includeInvalid || r.Valid)
                .ToList();
            await transaction.CommitAsync(ct).ConfigureAwait(false);
            return new KnowledgeGraph(entities, relations);
        }, ct);

    public Task<GraphCounts> CountGraphAsync(Caller caller, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            long entities = 0, relations = 0;
            await using var command = Command(c,
                $"SELECT kind, SUM(n)::bigint FROM {KeptCounts} WHERE tenant = $1 AND kind IN ('entity', 'relation') GROUP BY kind").Text(caller.Tenant);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                if (reader.GetString(0) == "entity")
                {
                    entities = reader.GetInt64(1);
                }
                else
                {
                    relations = reader.GetInt64(1);
                }
            }
            return new GraphCounts(entities, relations);
        }, ct);

    public Task<IReadOnlyList<string>> ListRecentEntityNamesAsync(Caller caller, int limit, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<string>>(async c =>
        {
            var names = new List<string>(Math.Min(limit, 1024));
            await using var command = Command(c, "SELECT name FROM graph_entities WHERE tenant = $1 ORDER BY eid DESC LIMIT $2").Text(caller.Tenant).Int(limit);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                names.Add(reader.GetString(0));
            }
            return names;
        }, ct);

    public Task<IReadOnlyList<string>> FindEntityNamesAsync(Caller caller, string nameKey, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<string>>(async c =>
        {
            // The fold (EntityNames.Key: NFC, invariant lower case) is compared here, as on SQLite, over the tenant's names.
            var names = new List<string>();
            await using var command = Command(c, "SELECT name FROM graph_entities WHERE tenant = $1 ORDER BY eid").Text(caller.Tenant);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                if (EntityNames.Key(name) == nameKey)
                {
                    names.Add(name);
                }
            }
            return names;
        }, ct);

    public Task<IReadOnlyList<Entity>> GetEntitiesAsync(Caller caller, IReadOnlyCollection<string> names, bool includeInvalid, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<Entity>>(async c =>
        {
            var now = FromMs(NowMs);
            var entities = new List<Entity>(names.Count);
            foreach (var name in names.Distinct(StringComparer.Ordinal))
            {
                if (await ReadEntityRowAsync(c, caller.Tenant, name).ConfigureAwait(false) is { } row)
                {
                    entities.Add(ToEntity(name, row.Type, row.CreatedAt, row.UpdatedAt, await ReadObservationsAsync(c, caller.Tenant, name).ConfigureAwait(false),
                        now, includeInvalid));
                }
            }
            return entities;
        }, ct);

    public Task<IReadOnlyList<Relation>> GetRelationsTouchingAsync(Caller caller, IReadOnlyCollection<string> names, bool includeInvalid, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<Relation>>(async c =>
        {
            var now = FromMs(NowMs);
            var list = names.Distinct(StringComparer.Ordinal).ToArray();
            var relations = await ReadRelationsAsync(Command(c,
                $"SELECT {RelationColumns} FROM graph_relations WHERE tenant = $1 AND (from_name = ANY($2) OR to_name = ANY($2)) ORDER BY rid")
                .Text(caller.Tenant).TextArray(list)).ConfigureAwait(false);
            return relations.Select(r => MarkValidity(r.Relation, now)).Where(r => includeInvalid || r.Valid).ToList();
        }, ct);

    public Task<GraphHistoryPage> GetGraphHistoryAsync(Caller caller, string name, long afterHid, int limit, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var entries = new List<GraphHistoryEntry>();
            await using var command = Command(c,
                "SELECT seq, event, actor, at, entity_name, changes, hid FROM graph_history WHERE tenant = $1 AND (entity_name = $2 OR other_name = $2) AND hid > $3 "
                + "ORDER BY hid LIMIT $4")
                .Text(caller.Tenant).Text(name).Int(afterHid).Int(limit + 1L);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            long last = 0;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                if (entries.Count == limit)
                {
                    return new GraphHistoryPage(entries, last); // one more row than the page: a next page exists
                }
                entries.Add(ReadGraphHistory(new PostgresRow(reader)));
                last = reader.GetInt64(6);
            }
            return new GraphHistoryPage(entries, null);
        }, ct);

    public Task<IReadOnlyList<TenantEntity>> GetEntitiesForIndexAsync(IReadOnlyList<(string Tenant, string Name)> keys, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<TenantEntity>>(async c =>
        {
            var found = new List<TenantEntity>(keys.Count);
            foreach (var (tenant, name) in keys)
            {
                if (await ReadEntityRowAsync(c, tenant, name).ConfigureAwait(false) is { } row)
                {
                    found.Add(new TenantEntity(tenant, name, row.Type, await ReadObservationsAsync(c, tenant, name).ConfigureAwait(false)));
                }
            }
            return found;
        }, ct);

    private static string RelationKey(Relation relation) => $"{relation.From}\u001f{relation.RelationType}\u001f{relation.To}";

    private static async Task<bool> EntityExistsAsync(NpgsqlConnection c, string tenant, string name)
    {
        await using var command = Command(c, "SELECT 1 FROM graph_entities WHERE tenant = $1 AND name = $2").Text(tenant).Text(name);
        return await command.ExecuteScalarAsync().ConfigureAwait(false) is not null;
    }

    private static async Task<(string Type, long CreatedAt, long UpdatedAt)?> ReadEntityRowAsync(NpgsqlConnection c, string tenant, string name)
    {
        await using var command = Command(c, "SELECT entity_type, created_at, updated_at FROM graph_entities WHERE tenant = $1 AND name = $2").Text(tenant).Text(name);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        return await reader.ReadAsync().ConfigureAwait(false) ? (reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)) : null;
    }

    private static async Task<List<Observation>> ReadObservationsAsync(NpgsqlConnection c, string tenant, string name)
    {
        var observations = new List<Observation>();
        await using var command = Command(c, "SELECT content, valid_from, valid_to FROM graph_observations WHERE tenant = $1 AND entity_name = $2 ORDER BY oid")
            .Text(tenant).Text(name);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            observations.Add(ReadObservation(reader, 0));
        }
        return observations;
    }

    private static Observation ReadObservation(NpgsqlDataReader row, int first) => StoreRows.ReadObservation(new PostgresRow(row), first);

    private static async Task<List<(long Rid, Relation Relation)>> ReadRelationsAsync(NpgsqlCommand command)
    {
        await using var owned = command;
        var relations = new List<(long, Relation)>();
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            relations.Add(ReadRelation(new PostgresRow(reader)));
        }
        return relations;
    }

    /// <summary>Inserts the observation unless the entity has one with the same content; returns whether it did.</summary>
    private static async Task<bool> InsertObservationAsync(NpgsqlConnection c, string tenant, string name, Observation observation, long now)
    {
        await using var command = Command(c,
            "INSERT INTO graph_observations(tenant, entity_name, content, valid_from, valid_to, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .Text(tenant).Text(name).Text(observation.Content).Int(ToMs(observation.ValidFrom)).Int(ToMs(observation.ValidTo)).Int(now);
        return await command.ExecuteNonQueryAsync().ConfigureAwait(false) > 0;
    }

    private static async Task TouchEntityAsync(NpgsqlConnection c, string tenant, string name, long now)
    {
        await using var command = Command(c, "UPDATE graph_entities SET updated_at = $3 WHERE tenant = $1 AND name = $2").Text(tenant).Text(name).Int(now);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private static async Task DeleteRelationRowAsync(NpgsqlConnection c, Caller caller, long rid, Relation relation, long now)
    {
        var seq = await AppendChangeAsync(c, caller.Tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Delete, now).ConfigureAwait(false);
        await using (var command = Command(c, "DELETE FROM graph_relations WHERE rid = $1").Int(rid))
        {
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        await AppendGraphHistoryAsync(c, caller, seq, GraphEvents.RelationDeleted, now, relation.From, relation.To, relation).ConfigureAwait(false);
    }

    private static async Task AppendGraphHistoryAsync<T>(NpgsqlConnection c, Caller caller, long seq, string historyEvent, long now, string entityName,
        string? otherName, T changes)
    {
        await using var command = Command(c,
            "INSERT INTO graph_history(tenant, seq, event, actor, at, entity_name, other_name, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .Text(caller.Tenant).Int(seq).Text(historyEvent).Text(caller.Actor).Int(now).Text(entityName).Text(otherName)
            .Text(JsonSerializer.Serialize(changes, EngramJson.Options));
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }
}
