using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Schema version 11 on PostgreSQL: what <see cref="Sqlite.SqliteInvisibleFoldMigration"/> does on SQLite (see there;
/// <see cref="InvisibleFold"/> decides both): entity and relation types folded, <c>memory_entities</c> re-keyed from the
/// affected memories' stored names, a change-log entry for each change. Schema version 12 (<see cref="FoldTags"/>): memory
/// tags stored before writes folded them, as <see cref="Sqlite.SqliteInvisibleFoldMigration.FoldTags"/> on SQLite.
/// </summary>
internal static class PostgresInvisibleFoldMigration
{
    public static void Run(NpgsqlConnection c, long nowMs)
    {
        FoldEntityTypes(c, nowMs);
        FoldRelationTypes(c, nowMs);
        RekeyMemoryEntities(c, nowMs);
    }

    private static void FoldEntityTypes(NpgsqlConnection c, long nowMs)
    {
        var changes = new List<(string Tenant, string Name, string Type)>();
        foreach (var row in Rows(c, "SELECT tenant, name, entity_type FROM graph_entities WHERE octet_length(entity_type) <> char_length(entity_type)"))
        {
            if (InvisibleFold.Folds((string)row[2], out var type))
            {
                changes.Add(((string)row[0], (string)row[1], type));
            }
        }
        foreach (var (tenant, name, type) in changes)
        {
            Execute(c, "UPDATE graph_entities SET entity_type = $3 WHERE tenant = $1 AND name = $2", tenant, name, type);
            AppendChange(c, tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, nowMs);
        }
    }

    private static void FoldRelationTypes(NpgsqlConnection c, long nowMs)
    {
        var candidates = Rows(c,
                "SELECT rid, tenant, from_name, to_name, relation_type FROM graph_relations WHERE octet_length(relation_type) <> char_length(relation_type) ORDER BY rid")
            .Select(r => new InvisibleFold.RelationRow((long)r[0], (string)r[1], (string)r[2], (string)r[3], (string)r[4]))
            .ToList();
        var plan = InvisibleFold.PlanRelations(candidates, (tenant, from, to, type) => Rows(c,
            "SELECT 1 FROM graph_relations WHERE tenant = $1 AND from_name = $2 AND to_name = $3 AND relation_type = $4", tenant, from, to, type).Count > 0);
        foreach (var row in plan.Delete)
        {
            Execute(c, "DELETE FROM graph_relations WHERE rid = $1", row.Rid);
            AppendChange(c, row.Tenant, GraphChangeKinds.Relation, RelationKey(row.From, row.Type, row.To), ChangeRecord.Delete, nowMs);
        }
        foreach (var (row, type) in plan.Retype)
        {
            Execute(c, "UPDATE graph_relations SET relation_type = $2 WHERE rid = $1", row.Rid, type);
            AppendChange(c, row.Tenant, GraphChangeKinds.Relation, RelationKey(row.From, row.Type, row.To), ChangeRecord.Delete, nowMs);
            AppendChange(c, row.Tenant, GraphChangeKinds.Relation, RelationKey(row.From, type, row.To), ChangeRecord.Upsert, nowMs);
        }
    }

    private static void RekeyMemoryEntities(NpgsqlConnection c, long nowMs)
    {
        foreach (var (rid, tenant, id, names) in MemoriesWithNonAscii(c, "entities", "memory_entities", "name_key"))
        {
            var keys = InvisibleFold.EntityKeys(names);
            if (IndexValues(c, "memory_entities", "name_key", rid).SequenceEqual(keys.Order(StringComparer.Ordinal), StringComparer.Ordinal))
            {
                continue; // a non-ASCII key the fold leaves as it was
            }
            Reindex(c, "memory_entities", "name_key", rid, tenant, id, keys, nowMs);
        }
    }

    /// <summary>
    /// Schema version 12: each memory with a non-ASCII tag gets the tags a write of them would store now
    /// (<see cref="InvisibleFold.Tags"/>), its <c>memory_tags</c> rows re-keyed and a memory upsert in the change log; its
    /// version, times and history stay (see <see cref="Sqlite.SqliteInvisibleFoldMigration.FoldTags"/>).
    /// </summary>
    public static void FoldTags(NpgsqlConnection c, long nowMs)
    {
        foreach (var (rid, tenant, id, tags) in MemoriesWithNonAscii(c, "tags", "memory_tags", "tag"))
        {
            var folded = InvisibleFold.Tags(tags);
            if (tags.SequenceEqual(folded, StringComparer.Ordinal) &&
                IndexValues(c, "memory_tags", "tag", rid).SequenceEqual(folded.Order(StringComparer.Ordinal), StringComparer.Ordinal))
            {
                continue; // non-ASCII tags the fold leaves as they were
            }
            Execute(c, "UPDATE memories SET tags = $2 WHERE rid = $1", rid, JsonSerializer.Serialize(folded, EngramJson.Options));
            Reindex(c, "memory_tags", "tag", rid, tenant, id, folded, nowMs);
        }
    }

    /// <summary>
    /// The memories with a row in <paramref name="index"/> whose <paramref name="column"/> has a non-ASCII character, with
    /// the JSON array <paramref name="arrayColumn"/> of each (the source of truth the index is built from).
    /// </summary>
    private static List<(long Rid, string Tenant, string Id, string[] Values)> MemoriesWithNonAscii(NpgsqlConnection c, string arrayColumn, string index, string column) =>
        [.. Rows(c,
            $"SELECT m.rid, m.tenant, m.id, m.{arrayColumn} FROM memories m WHERE m.rid IN " +
            $"(SELECT DISTINCT rid FROM {index} WHERE octet_length({column}) <> char_length({column})) ORDER BY m.rid")
            .Select(r => ((long)r[0], (string)r[1], (string)r[2], JsonSerializer.Deserialize<string[]>((string)r[3]) ?? []))];

    /// <summary>A memory's values in <paramref name="index"/>, in ordinal order.</summary>
    private static IEnumerable<string> IndexValues(NpgsqlConnection c, string index, string column, long rid) =>
        Rows(c, $"SELECT {column} FROM {index} WHERE rid = $1", rid).Select(r => (string)r[0]).Order(StringComparer.Ordinal);

    /// <summary>Replaces a memory's rows in <paramref name="index"/> with <paramref name="values"/> and logs a memory upsert (search indexes re-read it).</summary>
    private static void Reindex(NpgsqlConnection c, string index, string column, long rid, string tenant, string id, IReadOnlyList<string> values, long nowMs)
    {
        Execute(c, $"DELETE FROM {index} WHERE rid = $1", rid);
        foreach (var value in values)
        {
            Execute(c, $"INSERT INTO {index}(rid, {column}) VALUES ($1, $2) ON CONFLICT DO NOTHING", rid, value);
        }
        var seq = AppendChange(c, tenant, ChangeRecord.MemoryEntity, id, ChangeRecord.Upsert, nowMs);
        Execute(c, "UPDATE memories SET seq = $2 WHERE rid = $1", rid, seq);
    }

    /// <summary>As the graph's writes name a relation in the change log (PostgresMemoryStore.Graph.cs).</summary>
    private static string RelationKey(string from, string type, string to) => $"{from}\u001f{type}\u001f{to}";

    /// <summary>A change-log entry with the next seq of log_head (the migration's transaction holds its row from here on).</summary>
    private static long AppendChange(NpgsqlConnection c, string tenant, string entity, string entityId, string op, long nowMs) =>
        (long)Rows(c, "WITH head AS (UPDATE log_head SET seq = seq + 1 RETURNING seq) " +
            "INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, $1, $2, $3, $4, $5 FROM head RETURNING seq",
            tenant, entity, entityId, op, nowMs)[0][0];

    private static List<object[]> Rows(NpgsqlConnection c, string sql, params object?[] parameters)
    {
        using var command = new NpgsqlCommand(sql, c);
        foreach (var parameter in parameters)
        {
            command.Value(parameter);
        }
        using var reader = command.ExecuteReader();
        var rows = new List<object[]>();
        while (reader.Read())
        {
            var row = new object[reader.FieldCount];
            reader.GetValues(row);
            rows.Add(row);
        }
        return rows;
    }

    private static void Execute(NpgsqlConnection c, string sql, params object?[] parameters)
    {
        using var command = new NpgsqlCommand(sql, c);
        foreach (var parameter in parameters)
        {
            command.Value(parameter);
        }
        command.ExecuteNonQuery();
    }
}
