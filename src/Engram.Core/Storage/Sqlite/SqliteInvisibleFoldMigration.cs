using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Schema version 17: what schema 16 left with invisible characters in it (<see cref="InvisibleFold"/>). Entity and
/// relation types are folded (a relation whose folded triple exists is dropped, the older row winning), and
/// <c>memory_entities</c> is re-keyed from each affected memory's stored names by <see cref="Memories.EntityNames.Key"/>,
/// which folds them now. Each change appends a change-log entry (an entity upsert; a relation's delete and upsert; a
/// memory upsert, which makes every search index re-read the memory's entities), as a write through the service would.
/// Only values with a non-ASCII character can change: the queries look at those alone.
/// Schema version 18 (<see cref="FoldTags"/>): memory tags stored before writes folded them.
/// </summary>
internal static class SqliteInvisibleFoldMigration
{
    public static void Run(SqliteConnection c, long nowMs)
    {
        FoldEntityTypes(c, nowMs);
        FoldRelationTypes(c, nowMs);
        RekeyMemoryEntities(c, nowMs);
    }

    private static void FoldEntityTypes(SqliteConnection c, long nowMs)
    {
        var changes = new List<(string Tenant, string Name, string Type)>();
        using (var statement = c.Prepare("SELECT tenant, name, entity_type FROM graph_entities WHERE length(CAST(entity_type AS BLOB)) <> length(entity_type)"))
        {
            while (statement.Step())
            {
                if (InvisibleFold.Folds(statement.GetText(2), out var type))
                {
                    changes.Add((statement.GetText(0), statement.GetText(1), type));
                }
            }
        }
        foreach (var (tenant, name, type) in changes)
        {
            c.ExecuteNonQuery("UPDATE graph_entities SET entity_type = ?3 WHERE tenant = ?1 AND name = ?2", tenant, name, type);
            AppendChange(c, tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, nowMs);
        }
    }

    private static void FoldRelationTypes(SqliteConnection c, long nowMs)
    {
        var candidates = new List<InvisibleFold.RelationRow>();
        using (var statement = c.Prepare(
            "SELECT rid, tenant, from_name, to_name, relation_type FROM graph_relations WHERE length(CAST(relation_type AS BLOB)) <> length(relation_type) ORDER BY rid"))
        {
            while (statement.Step())
            {
                candidates.Add(new(statement.GetInt64(0), statement.GetText(1), statement.GetText(2), statement.GetText(3), statement.GetText(4)));
            }
        }
        var plan = InvisibleFold.PlanRelations(candidates, (tenant, from, to, type) => c.ScalarInt64(
            "SELECT 1 FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 AND to_name = ?3 AND relation_type = ?4", tenant, from, to, type) is not null);
        foreach (var row in plan.Delete)
        {
            c.ExecuteNonQuery("DELETE FROM graph_relations WHERE rid = ?1", row.Rid);
            AppendChange(c, row.Tenant, GraphChangeKinds.Relation, RelationKey(row.From, row.Type, row.To), ChangeRecord.Delete, nowMs);
        }
        foreach (var (row, type) in plan.Retype)
        {
            c.ExecuteNonQuery("UPDATE graph_relations SET relation_type = ?2 WHERE rid = ?1", row.Rid, type);
            AppendChange(c, row.Tenant, GraphChangeKinds.Relation, RelationKey(row.From, row.Type, row.To), ChangeRecord.Delete, nowMs);
            AppendChange(c, row.Tenant, GraphChangeKinds.Relation, RelationKey(row.From, type, row.To), ChangeRecord.Upsert, nowMs);
        }
    }

    private static void RekeyMemoryEntities(SqliteConnection c, long nowMs)
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
    /// Schema version 18: tags stored before writes folded invisible characters out of them. A filter compares the folded
    /// tag, so "urgent\u200B" would be found by no filter, nor named again. Each memory whose tags (its index rows,
    /// which hold the text unescaped whatever JSON an earlier release wrote) have a non-ASCII character gets the tags a
    /// write of them would store now (<see cref="InvisibleFold.Tags"/>): <c>memories.tags</c> rewritten, its
    /// <c>memory_tags</c> rows re-keyed, a memory upsert in the change log (search indexes and their snapshots re-read the
    /// memory) and that seq on the row. Its version, times and history stay: no caller changed the memory, and an
    /// If-Match with its version still applies; history rows keep the tags as they were written.
    /// </summary>
    public static void FoldTags(SqliteConnection c, long nowMs)
    {
        foreach (var (rid, tenant, id, tags) in MemoriesWithNonAscii(c, "tags", "memory_tags", "tag"))
        {
            var folded = InvisibleFold.Tags(tags);
            if (tags.SequenceEqual(folded, StringComparer.Ordinal) &&
                IndexValues(c, "memory_tags", "tag", rid).SequenceEqual(folded.Order(StringComparer.Ordinal), StringComparer.Ordinal))
            {
                continue; // non-ASCII tags the fold leaves as they were
            }
            c.ExecuteNonQuery("UPDATE memories SET tags = ?2 WHERE rid = ?1", rid, JsonSerializer.Serialize(folded, EngramJson.Options));
            Reindex(c, "memory_tags", "tag", rid, tenant, id, folded, nowMs);
        }
    }

    /// <summary>
    /// The memories with a row in <paramref name="index"/> whose <paramref name="column"/> has a non-ASCII character, with
    /// the JSON array <paramref name="arrayColumn"/> of each (the source of truth the index is built from).
    /// </summary>
    private static List<(long Rid, string Tenant, string Id, string[] Values)> MemoriesWithNonAscii(SqliteConnection c, string arrayColumn, string index, string column)
    {
        var memories = new List<(long, string, string, string[])>();
        using var statement = c.Prepare(
            $"SELECT m.rid, m.tenant, m.id, m.{arrayColumn} FROM memories m WHERE m.rid IN " +
            $"(SELECT DISTINCT rid FROM {index} WHERE length(CAST({column} AS BLOB)) <> length({column})) ORDER BY m.rid");
        while (statement.Step())
        {
            memories.Add((statement.GetInt64(0), statement.GetText(1), statement.GetText(2), statement.GetStringArray(3)));
        }
        return memories;
    }

    /// <summary>A memory's values in <paramref name="index"/>, in ordinal order.</summary>
    private static List<string> IndexValues(SqliteConnection c, string index, string column, long rid)
    {
        var values = new List<string>();
        using (var statement = c.Prepare($"SELECT {column} FROM {index} WHERE rid = ?1"))
        {
            statement.BindAll([rid]);
            while (statement.Step())
            {
                values.Add(statement.GetText(0));
            }
        }
        values.Sort(StringComparer.Ordinal);
        return values;
    }

    /// <summary>Replaces a memory's rows in <paramref name="index"/> with <paramref name="values"/> and logs a memory upsert (search indexes re-read it).</summary>
    private static void Reindex(SqliteConnection c, string index, string column, long rid, string tenant, string id, IReadOnlyList<string> values, long nowMs)
    {
        c.ExecuteNonQuery($"DELETE FROM {index} WHERE rid = ?1", rid);
        foreach (var value in values)
        {
            c.ExecuteNonQuery($"INSERT OR IGNORE INTO {index}(rid, {column}) VALUES (?1, ?2)", rid, value);
        }
        var seq = AppendChange(c, tenant, ChangeRecord.MemoryEntity, id, ChangeRecord.Upsert, nowMs);
        c.ExecuteNonQuery("UPDATE memories SET seq = ?2 WHERE rid = ?1", rid, seq);
    }

    /// <summary>As the graph's writes name a relation in the change log (SqliteMemoryStore.Graph.cs).</summary>
    private static string RelationKey(string from, string type, string to) => $"{from}\u001f{type}\u001f{to}";

    private static long AppendChange(SqliteConnection c, string tenant, string entity, string entityId, string op, long nowMs)
    {
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)", tenant, entity, entityId, op, nowMs);
        return c.LastInsertRowId;
    }
}
