using Engram.Core.Common;
using Engram.Core.Memories;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// Query-string parsing shared by the listing and the bulk delete. Unknown parameters are refused,
/// like unknown body fields: a misspelt filter must not silently widen a listing or a delete.
/// </summary>
internal static class QueryParser
{
    private static readonly HashSet<string> FilterKeys =
    [
        "user_id", "agent_id", "session_id", "namespace", "type", "tier", "tags", "tags_match", "entity", "source",
        "created_after", "created_before", "updated_after", "updated_before",
    ];

    public static MemoryFilter Filter(IQueryCollection query, params ReadOnlySpan<string> otherAllowed)
    {
        var allowed = otherAllowed.ToArray();
        Dictionary<string, string>? metadata = null;
        foreach (var key in query.Keys)
        {
            if (key.StartsWith("metadata.", StringComparison.Ordinal) && key.Length > "metadata.".Length)
            {
                var path = key["metadata.".Length..];
                if (path.Split('.').Any(string.IsNullOrEmpty))
                {
                    throw new ValidationException(key, $"'{key}' is not a valid metadata path; use metadata.key or metadata.outer.inner");
                }
                (metadata ??= new(StringComparer.Ordinal))[path] = Single(query, key)!;
            }
            else if (!FilterKeys.Contains(key) && !allowed.Contains(key))
            {
                throw new ValidationException(key, $"unknown query parameter '{key}'");
            }
        }

        return new MemoryFilter
        {
            UserId = Single(query, "user_id"),
            AgentId = Single(query, "agent_id"),
            SessionId = Single(query, "session_id"),
            Namespace = Single(query, "namespace"),
            Source = Single(query, "source"),
            Types = List(query, "type"),
            Tiers = List(query, "tier")?.Select(t => MemoryTiers.TryParse(t, out var tier)
                ? tier
                : throw new ValidationException("tier", $"tier must be one of {MemoryTiers.Allowed} (got '{t}')")).ToList(),
            Tags = List(query, "tags"),
            TagsMatch = Single(query, "tags_match") switch
            {
                null or "all" => TagMatch.All,
                "any" => TagMatch.Any,
                var other => throw new ValidationException("tags_match", $"tags_match must be 'all' or 'any' (got '{other}')"),
            },
            Entity = Entity(query),
            Metadata = metadata,
            CreatedAfter = Timestamp(query, "created_after"),
            CreatedBefore = Timestamp(query, "created_before"),
            UpdatedAfter = Timestamp(query, "updated_after"),
            UpdatedBefore = Timestamp(query, "updated_before"),
        };
    }

    public static string? Single(IQueryCollection query, string key)
    {
        if (!query.TryGetValue(key, out var values))
        {
            return null;
        }
        if (values.Count > 1)
        {
            throw new ValidationException(key, $"'{key}' is given {values.Count} times; give it once (lists are comma-separated)");
        }
        var value = values[0];
        return string.IsNullOrEmpty(value) ? throw new ValidationException(key, $"'{key}' must not be empty") : value;
    }

    public static int? Int(IQueryCollection query, string key) =>
        Single(query, key) is { } text
            ? int.TryParse(text, out var value) ? value : throw new ValidationException(key, $"'{key}' must be a whole number (got '{text}')")
            : null;

    public static bool Bool(IQueryCollection query, string key) => Single(query, key) switch
    {
        null or "false" => false,
        "true" => true,
        var other => throw new ValidationException(key, $"'{key}' must be true or false (got '{other}')"),
    };

    public static DuplicatePolicy OnDuplicate(IQueryCollection query) => DuplicatePolicies.Parse(Single(query, "on_duplicate"));

    public static void RefuseAllExcept(IQueryCollection query, params ReadOnlySpan<string> allowed)
    {
        foreach (var key in query.Keys)
        {
            if (!allowed.Contains(key))
            {
                throw new ValidationException(key, $"unknown query parameter '{key}'");
            }
        }
    }

    /// <summary>A comma-separated list; one that names nothing (<c>tags=,,</c>) is refused as an empty one is, not read as no filter.</summary>
    private static List<string>? List(IQueryCollection query, string key)
    {
        if (Single(query, key) is not { } text)
        {
            return null;
        }
        var items = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        return items.Count > 0 ? items : throw new ValidationException(key, $"'{key}' must name at least one value (a comma-separated list)");
    }

    private static string? Entity(IQueryCollection query)
    {
        var name = Single(query, "entity");
        return name is not null && name.AsSpan().Trim().IsEmpty
            ? throw new ValidationException("entity", "'entity' must name an entity, not only white space")
            : name;
    }

    private static DateTimeOffset? Timestamp(IQueryCollection query, string key) =>
        Single(query, key) is { } text
            ? EngramJson.TryParseTimestamp(text, out var value) ? value : throw new ValidationException(key, $"'{key}' must be an ISO 8601 timestamp (got '{text}')")
            : null;
}
