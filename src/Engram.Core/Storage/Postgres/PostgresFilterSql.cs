using System.Globalization;
using System.Text;
using Engram.Core.Memories;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// A <see cref="MemoryFilter"/> as a WHERE clause over <c>memories m</c> with positional parameters
/// ($1, $2, ...). The tenant and the expiry condition are always first, as in the SQLite store.
/// </summary>
internal sealed class PostgresFilterSql
{
    private readonly StringBuilder _where = new();

    private PostgresFilterSql()
    {
    }

    public List<object?> Parameters { get; } = [];

    public string Where => _where.ToString();

    /// <summary>The next parameter's placeholder, after adding its value.</summary>
    public string Param(object? value)
    {
        Parameters.Add(value);
        return "$" + Parameters.Count.ToString(CultureInfo.InvariantCulture);
    }

    public static PostgresFilterSql Build(string tenant, MemoryFilter filter, long nowMs)
    {
        var sql = new PostgresFilterSql();
        sql.Append($"m.tenant = {sql.Param(tenant)}");
        sql.Append($"(m.expires_at IS NULL OR m.expires_at > {sql.Param(nowMs)})");
        if (filter.ExcludeSuperseded)
        {
            sql.Append("m.superseded_by IS NULL");
        }
        sql.AddIfSet("m.user_id", filter.UserId);
        sql.AddIfSet("m.agent_id", filter.AgentId);
        sql.AddIfSet("m.session_id", filter.SessionId);
        sql.AddIfSet("m.namespace", filter.Namespace);
        sql.AddIfSet("m.source", filter.Source);
        if (filter.Types is { Count: > 0 } types)
        {
            sql.Append($"m.type = ANY({sql.Param(types.ToArray())})");
        }
        if (filter.Tiers is { Count: > 0 } tiers)
        {
            sql.Append($"m.tier = ANY({sql.Param(tiers.Select(t => t.ToWire()).ToArray())})");
        }
        if (filter.Tags is { Count: > 0 } tags)
        {
            if (filter.TagsMatch == TagMatch.Any)
            {
                sql.Append($"EXISTS (SELECT 1 FROM memory_tags t WHERE t.rid = m.rid AND t.tag = ANY({sql.Param(tags.ToArray())}))");
            }
            else
            {
                foreach (var tag in tags.Distinct(StringComparer.Ordinal))
                {
                    sql.Append($"EXISTS (SELECT 1 FROM memory_tags t WHERE t.rid = m.rid AND t.tag = {sql.Param(tag)})");
                }
            }
        }
        if (filter.Entity is { } entity)
        {
            sql.Append($"EXISTS (SELECT 1 FROM memory_entities e WHERE e.rid = m.rid AND e.name_key = {sql.Param(EntityNames.Key(entity))})");
        }
        if (filter.Metadata is { Count: > 0 } metadata)
        {
            foreach (var (key, value) in metadata)
            {
                sql.AddMetadataEquals(key, value);
            }
        }
        sql.AddIfSet("m.created_at >=", filter.CreatedAfter?.ToUnixTimeMilliseconds());
        sql.AddIfSet("m.created_at <", filter.CreatedBefore?.ToUnixTimeMilliseconds());
        sql.AddIfSet("m.updated_at >=", filter.UpdatedAfter?.ToUnixTimeMilliseconds());
        sql.AddIfSet("m.updated_at <", filter.UpdatedBefore?.ToUnixTimeMilliseconds());
        return sql;
    }

    /// <summary>The parameters on <paramref name="command"/>, in order.</summary>
    public NpgsqlCommand Bind(NpgsqlCommand command)
    {
        foreach (var value in Parameters)
        {
            command.Value(value);
        }
        return command;
    }

    public void Append(string condition)
    {
        if (_where.Length > 0)
        {
            _where.Append(" AND ");
        }
        _where.Append(condition);
    }

    private void AddIfSet(string column, string? value)
    {
        if (value is not null)
        {
            Append($"{column} = {Param(value)}");
        }
    }

    private void AddIfSet(string comparison, long? value)
    {
        if (value is not null)
        {
            Append($"{comparison} {Param(value)}");
        }
    }

    /// <summary>
    /// Metadata equality on a JSON path, as on SQLite: the text from a query string matches a JSON
    /// string equal to it, a JSON number equal to it (when it parses as one), or true/false.
    /// </summary>
    private void AddMetadataEquals(string key, string value)
    {
        var node = MetadataNode(key.Split('.'));
        if (value is "true" or "false")
        {
            Append($"{node} = {Param(value)}::jsonb");
            return;
        }
        var text = $"(jsonb_typeof({node}) = 'string' AND ({node} #>> '{{}}') = {Param(value)})";
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number))
        {
            // jsonb's own equality of numbers (numeric, exact): a cast of every row's value to float8 failed the whole
            // query on one stored number beyond a double (1e-400), since SQL does not promise to test the type first.
            Append($"({text} OR {node} = to_jsonb({Param(value.Trim())}::numeric))");
            return;
        }
        Append(text);
    }

    /// <summary>
    /// The value at a metadata key's path, stepping only into objects, as SQLite's <c>$."a"."b"</c> does: <c>#&gt;</c> alone
    /// also steps into arrays, so <c>tags.0</c> matched a first tag here and nothing on SQLite.
    /// </summary>
    private string MetadataNode(string[] segments)
    {
        var node = $"(m.metadata_jsonb #> {Param(segments)})";
        if (segments.Length == 1)
        {
            return node; // the metadata itself is always an object
        }
        var guards = new StringBuilder();
        for (var depth = 1; depth < segments.Length; depth++)
        {
            guards.Append(guards.Length == 0 ? "" : " AND ")
                .Append($"jsonb_typeof(m.metadata_jsonb #> {Param(segments[..depth])}) = 'object'");
        }
        return $"(CASE WHEN {guards} THEN {node} END)";
    }
}
