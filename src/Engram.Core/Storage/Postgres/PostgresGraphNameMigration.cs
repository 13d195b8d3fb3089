using Engram.Core.Graph;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Graph entity names in NFC on PostgreSQL, as <see cref="Sqlite.SqliteGraphNameMigration"/> does on SQLite (see there
/// for what and why; <see cref="GraphNameMerge"/> decides both). Normalized in .NET rather than with PostgreSQL's
/// <c>normalize()</c>, so a name gets exactly the form the service gives it. The differences come from PostgreSQL's
/// foreign keys, which are checked at once: an entity whose NFC name is free gets a new row under that name, its
/// observations and relations move to it, then the old row goes (so it lists after the entities created before the
/// migration ran).
/// </summary>
internal static class PostgresGraphNameMigration
{
    public static void Run(NpgsqlConnection c, long nowMs)
    {
        // Only a name with a non-ASCII character can change under NFC: its UTF-8 is longer than its character count.
        foreach (var (tenant, name, target) in Renames(c, "SELECT tenant, name FROM graph_entities WHERE octet_length(name) <> char_length(name) ORDER BY eid"))
        {
            MergeEntity(c, tenant, name, target, nowMs);
        }
        foreach (var column in (ReadOnlySpan<string>)["entity_name", "other_name"])
        {
            foreach (var (tenant, name, target) in Renames(c,
                $"SELECT DISTINCT tenant, {column} FROM graph_history WHERE {column} IS NOT NULL AND octet_length({column}) <> char_length({column})"))
            {
                Execute(c, $"UPDATE graph_history SET {column} = $3 WHERE tenant = $1 AND {column} = $2", tenant, name, target);
            }
        }
    }

    private static List<(string Tenant, string Name, string Target)> Renames(NpgsqlConnection c, string sql)
    {
        var renames = new List<(string, string, string)>();
        using var command = new NpgsqlCommand(sql, c);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var name = reader.GetString(1);
            if (GraphNameMerge.NeedsNormalizing(name, out var target))
            {
                renames.Add((reader.GetString(0), name, target));
            }
        }
        return renames;
    }

    private static void MergeEntity(NpgsqlConnection c, string tenant, string name, string target, long nowMs)
    {
        // The target row first: the children's foreign keys must find it when they move.
        var merging = Execute(c,
            "UPDATE graph_entities t SET created_at = least(t.created_at, o.created_at), updated_at = greatest(t.updated_at, o.updated_at) " +
            "FROM graph_entities o WHERE t.tenant = $1 AND t.name = $3 AND o.tenant = $1 AND o.name = $2", tenant, name, target) > 0;
        if (!merging)
        {
            Execute(c, "INSERT INTO graph_entities(tenant, name, entity_type, created_at, updated_at) " +
                "SELECT tenant, $3, entity_type, created_at, updated_at FROM graph_entities WHERE tenant = $1 AND name = $2", tenant, name, target);
        }

        var moving = new List<GraphNameMerge.ObservationRow>();
        var held = new List<string>();
        using (var command = Command(c, "SELECT oid, content, entity_name = $2 FROM graph_observations WHERE tenant = $1 AND entity_name IN ($2, $3) ORDER BY oid",
            tenant, name, target))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                if (reader.GetBoolean(2))
                {
                    moving.Add(new(reader.GetInt64(0), reader.GetString(1)));
                }
                else
                {
                    held.Add(reader.GetString(1));
                }
            }
        }
        foreach (var oid in GraphNameMerge.ObservationsToDrop(moving, held))
        {
            Execute(c, "DELETE FROM graph_observations WHERE oid = $1", oid);
        }
        Execute(c, "UPDATE graph_observations SET entity_name = $3 WHERE tenant = $1 AND entity_name = $2", tenant, name, target);

        var touching = new List<GraphNameMerge.RelationRow>();
        using (var command = Command(c,
            "SELECT rid, from_name, to_name, relation_type FROM graph_relations WHERE tenant = $1 AND (from_name IN ($2, $3) OR to_name IN ($2, $3))",
            tenant, name, target))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                touching.Add(new(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
            }
        }
        var plan = GraphNameMerge.PlanRelations(name, target, touching);
        foreach (var rid in plan.Delete)
        {
            Execute(c, "DELETE FROM graph_relations WHERE rid = $1", rid);
        }
        foreach (var row in plan.Update)
        {
            Execute(c, "UPDATE graph_relations SET from_name = $2, to_name = $3 WHERE rid = $1", row.Rid, row.From, row.To);
        }

        Execute(c, "DELETE FROM graph_entities WHERE tenant = $1 AND name = $2", tenant, name);
        AppendChange(c, tenant, name, ChangeRecord.Delete, nowMs);
        AppendChange(c, tenant, target, ChangeRecord.Upsert, nowMs);
    }

    /// <summary>A change-log entry with the next seq of log_head (the migration's transaction holds its row from here on).</summary>
    private static void AppendChange(NpgsqlConnection c, string tenant, string name, string op, long nowMs) =>
        Execute(c, "WITH head AS (UPDATE log_head SET seq = seq + 1 RETURNING seq) " +
            "INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, $1, $2, $3, $4, $5 FROM head",
            tenant, GraphChangeKinds.Entity, name, op, nowMs);

    private static NpgsqlCommand Command(NpgsqlConnection c, string sql, params object?[] parameters)
    {
        var command = new NpgsqlCommand(sql, c);
        foreach (var parameter in parameters)
        {
            command.Value(parameter);
        }
        return command;
    }

    private static int Execute(NpgsqlConnection c, string sql, params object?[] parameters)
    {
        using var command = Command(c, sql, parameters);
        return command.ExecuteNonQuery();
    }
}
