using System.Globalization;
using System.Text;
using Engram.Core.Memories;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Turns a <see cref="MemoryFilter"/> into a WHERE clause over <c>memories m</c> with positional
/// parameters. The tenant and the expiry condition are always first: no query can leave them out.
/// </summary>
internal sealed class SqliteFilterSql
{
    private readonly StringBuilder _where = new();

    private SqliteFilterSql()
    {
    }

    public List<object?> Parameters { get; } = [];

    public string Where => _where.ToString();

    public static SqliteFilterSql Build(string tenant, MemoryFilter filter, long nowMs)
    {
        var sql = new SqliteFilterSql();
        sql.Add("m.tenant = ?", tenant);
        sql.Add("(m.expires_at IS NULL OR m.expires_at > ?)", nowMs);
        if (filter.ExcludeSuperseded)
        {
            sql.Append("m.superseded_by IS NULL");
        }
        sql.AddIfSet("m.user_id = ?", filter.UserId);
        sql.AddIfSet("m.agent_id = ?", filter.AgentId);
        sql.AddIfSet("m.session_id = ?", filter.SessionId);
        sql.AddIfSet("m.namespace = ?", filter.Namespace);
        sql.AddIfSet("m.source = ?", filter.Source);
        if (filter.Types is { Count: > 0 } types)
        {
            sql.AddIn("m.type", types);
        }
        if (filter.Tiers is { Count: > 0 } tiers)
        {
            sql.AddIn("m.tier", tiers.Select(t => t.ToWire()).ToList());
        }
        if (filter.Tags is { Count: > 0 } tags)
        {
            if (filter.TagsMatch == TagMatch.Any)
            {
                sql.Append("EXISTS (SELECT 1 FROM memory_tags t WHERE t.rid = m.rid AND t.tag IN (" + Placeholders(tags.Count) + "))");
                sql.Parameters.AddRange(tags);
            }
            else
            {
                foreach (var tag in tags.Distinct(StringComparer.Ordinal))
                {
                    sql.Add("EXISTS (SELECT 1 FROM memory_tags t WHERE t.rid = m.rid AND t.tag = ?)", tag);
                }
            }
        }
        if (filter.Entity is { } entity)
        {
            sql.Add("EXISTS (SELECT 1 FROM memory_entities e WHERE e.rid = m.rid AND e.name_key = ?)", EntityNames.Key(entity));
        }
        if (filter.Metadata is { Count: > 0 } metadata)
        {
            foreach (var (key, value) in metadata)
            {
                sql.AddMetadataEquals(key, value);
            }
        }
        sql.AddIfSet("m.created_at >= ?", filter.CreatedAfter?.ToUnixTimeMilliseconds());
        sql.AddIfSet("m.created_at < ?", filter.CreatedBefore?.ToUnixTimeMilliseconds());
        sql.AddIfSet("m.updated_at >= ?", filter.UpdatedAfter?.ToUnixTimeMilliseconds());
        sql.AddIfSet("m.updated_at < ?", filter.UpdatedBefore?.ToUnixTimeMilliseconds());
        return sql;
    }

    public void Add(string condition, object? value)
    {
        Append(condition);
        Parameters.Add(value);
    }

    private void AddIfSet(string condition, object? value)
    {
        if (value is not null)
        {
            Add(condition, value);
        }
    }

    private void AddIn(string column, IReadOnlyList<string> values)
    {
        Append($"{column} IN ({Placeholders(values.Count)})");
        Parameters.AddRange(values);
    }

    /// <summary>
    /// Metadata equality on a JSON path. The value is text from a query string, so it matches a JSON
    /// string equal to it, a JSON number equal to it (when it parses as one), or true/false.
    /// </summary>
    private void AddMetadataEquals(string key, string value)
    {
        var path = "$." + string.Join('.', key.Split('.').Select(part => "\"" + part.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));
        if (value is "true" or "false")
        {
            Add("(json_type(m.metadata_jsonb, ?) = ?)", path);
            Parameters.Add(value);
            return;
        }
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            Append("((json_type(m.metadata_jsonb, ?) = 'text' AND json_extract(m.metadata_jsonb, ?) = ?) OR " +
                   "(json_type(m.metadata_jsonb, ?) IN ('integer', 'real') AND json_extract(m.metadata_jsonb, ?) = ?))");
            // A whole number goes as an integer: SQLite compares a stored integer with it exactly (9007199254740993 is not
            // 9007199254740992, which a double would make of both), and a stored real by value, as PostgreSQL does.
            object bound = long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole) ? (object)whole : number;
            Parameters.AddRange([path, path, value, path, path, bound]);
            return;
        }
        Append("(json_type(m.metadata_jsonb, ?) = 'text' AND json_extract(m.metadata_jsonb, ?) = ?)");
        Parameters.AddRange([path, path, value]);
    }

    private void Append(string condition)
    {
        if (_where.Length > 0)
        {
            _where.Append(" AND ");
        }
        _where.Append(condition);
    }

    private static string Placeholders(int count) => string.Join(", ", Enumerable.Repeat("?", count));
}
