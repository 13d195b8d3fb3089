using Engram.Core.Graph;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Schema version 15: graph entity names in NFC (<see cref="GraphValidator.NormalizeName"/>). Before it, "José" written
/// precomposed and decomposed were two entities that looked alike; the service now normalizes every name it takes, so a
/// stored name not in NFC could no longer be reached. Each such entity (but one too long in NFC, see
/// <see cref="GraphNameMerge.NeedsNormalizing"/>) is renamed to its NFC form, or merged into the
/// entity that already has it (<see cref="GraphNameMerge"/>: observations and relations move, duplicates are dropped, the
/// target's type is kept, the earlier created_at and the later updated_at). History rows are re-keyed (also those of
/// deleted entities), so an entity's history reads as one. Each rename appends change-log entries (the old name deleted,
/// the new one upserted) so the graph search index of this and any other process reloads both.
/// Runs inside the migration's transaction with foreign keys off (<see cref="SqliteSchema.Migrate"/>), so it deletes
/// children itself and the migration's foreign key check vouches for the result.
/// </summary>
internal static class SqliteGraphNameMigration
{
    public static void Run(SqliteConnection c, long nowMs)
    {
        // Only a name with a non-ASCII character can change under NFC: its UTF-8 is longer than its character count.
        foreach (var (tenant, name, target) in Renames(c, "SELECT tenant, name FROM graph_entities WHERE length(CAST(name AS BLOB)) <> length(name) ORDER BY rowid"))
        {
            MergeEntity(c, tenant, name, target, nowMs);
        }
        foreach (var column in (ReadOnlySpan<string>)["entity_name", "other_name"])
        {
            foreach (var (tenant, name, target) in Renames(c,
                $"SELECT DISTINCT tenant, {column} FROM graph_history WHERE {column} IS NOT NULL AND length(CAST({column} AS BLOB)) <> length({column})"))
            {
                c.ExecuteNonQuery($"UPDATE graph_history SET {column} = ?3 WHERE tenant = ?1 AND {column} = ?2", tenant, name, target);
            }
        }
    }

    private static List<(string Tenant, string Name, string Target)> Renames(SqliteConnection c, string sql)
    {
        var renames = new List<(string, string, string)>();
        using var statement = c.Prepare(sql);
        while (statement.Step())
        {
            var name = statement.GetText(1);
            if (GraphNameMerge.NeedsNormalizing(name, out var target))
            {
                renames.Add((statement.GetText(0), name, target));
            }
        }
        return renames;
    }

    private static void MergeEntity(SqliteConnection c, string tenant, string name, string target, long nowMs)
    {
        var merging = c.ScalarInt64("SELECT 1 FROM graph_entities WHERE tenant = ?1 AND name = ?2", tenant, target) is not null;

        var moving = new List<GraphNameMerge.ObservationRow>();
        using (var statement = c.Prepare("SELECT oid, content FROM graph_observations WHERE tenant = ?1 AND entity_name = ?2 ORDER BY oid"))
        {
            statement.BindAll([tenant, name]);
            while (statement.Step())
            {
                moving.Add(new(statement.GetInt64(0), statement.GetText(1)));
            }
        }
        var held = new List<string>();
        using (var statement = c.Prepare("SELECT content FROM graph_observations WHERE tenant = ?1 AND entity_name = ?2"))
        {
            statement.BindAll([tenant, target]);
            while (statement.Step())
            {
                held.Add(statement.GetText(0));
            }
        }
        foreach (var oid in GraphNameMerge.ObservationsToDrop(moving, held))
        {
            c.ExecuteNonQuery("DELETE FROM graph_observations WHERE oid = ?1", oid);
        }
        c.ExecuteNonQuery("UPDATE graph_observations SET entity_name = ?3 WHERE tenant = ?1 AND entity_name = ?2", tenant, name, target);

        var touching = new List<GraphNameMerge.RelationRow>();
        foreach (var end in (ReadOnlySpan<string>)[name, target])
        {
            using var statement = c.Prepare(
                "SELECT rid, from_name, to_name, relation_type FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 UNION ALL " +
                "SELECT rid, from_name, to_name, relation_type FROM graph_relations WHERE tenant = ?1 AND to_name = ?2");
            statement.BindAll([tenant, end]);
            while (statement.Step())
            {
                touching.Add(new(statement.GetInt64(0), statement.GetText(1), statement.GetText(2), statement.GetText(3)));
            }
        }
        var plan = GraphNameMerge.PlanRelations(name, target, touching);
        foreach (var rid in plan.Delete)
        {
            c.ExecuteNonQuery("DELETE FROM graph_relations WHERE rid = ?1", rid);
        }
        foreach (var row in plan.Update)
        {
            c.ExecuteNonQuery("UPDATE graph_relations SET from_name = ?2, to_name = ?3 WHERE rid = ?1", row.Rid, row.From, row.To);
        }

        if (merging)
        {
            c.ExecuteNonQuery(
                "UPDATE graph_entities SET created_at = min(created_at, (SELECT created_at FROM graph_entities WHERE tenant = ?1 AND name = ?2)), " +
                "updated_at = max(updated_at, (SELECT updated_at FROM graph_entities WHERE tenant = ?1 AND name = ?2)) WHERE tenant = ?1 AND name = ?3",
                tenant, name, target);
            c.ExecuteNonQuery("DELETE FROM graph_entities WHERE tenant = ?1 AND name = ?2", tenant, name);
        }
        else
        {
            // Renamed in place: the row keeps its rowid, so the entity keeps its place in creation order.
            c.ExecuteNonQuery("UPDATE graph_entities SET name = ?3 WHERE tenant = ?1 AND name = ?2", tenant, name, target);
        }
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            tenant, GraphChangeKinds.Entity, name, ChangeRecord.Delete, nowMs);
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            tenant, GraphChangeKinds.Entity, target, ChangeRecord.Upsert, nowMs);
    }
}
