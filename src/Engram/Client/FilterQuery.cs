using System.Text;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Cli.Client;

/// <summary>A <see cref="MemoryFilter"/> as the REST API's query parameters (lists comma-separated, metadata as metadata.key=value).</summary>
internal static class FilterQuery
{
    public static List<(string Key, string Value)> From(MemoryFilter filter)
    {
        var query = new List<(string Key, string Value)>();
        void Add(string key, string? value)
        {
            if (value is not null)
            {
                query.Add((key, value));
            }
        }

        Add("user_id", filter.UserId);
        Add("agent_id", filter.AgentId);
        Add("session_id", filter.SessionId);
        Add("namespace", filter.Namespace);
        Add("source", filter.Source);
        Add("type", Join(filter.Types));
        Add("tier", Join(filter.Tiers?.Select(t => t.ToWire())));
        Add("tags", Join(filter.Tags));
        if (filter.Tags is not null && filter.TagsMatch == TagMatch.Any)
        {
            Add("tags_match", "any");
        }
        Add("entity", filter.Entity);
        foreach (var (path, value) in filter.Metadata ?? new Dictionary<string, string>())
        {
            Add("metadata." + path, value);
        }
        Add("created_after", Timestamp(filter.CreatedAfter));
        Add("created_before", Timestamp(filter.CreatedBefore));
        Add("updated_after", Timestamp(filter.UpdatedAfter));
        Add("updated_before", Timestamp(filter.UpdatedBefore));
        return query;
    }

    public static string Format(IReadOnlyList<(string Key, string Value)> query)
    {
        if (query.Count == 0)
        {
            return "";
        }
        var text = new StringBuilder();
        foreach (var (key, value) in query)
        {
            text.Append(text.Length == 0 ? '?' : '&').Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
        }
        return text.ToString();
    }

    private static string? Join(IEnumerable<string>? values) => values is null ? null : string.Join(',', values);

    private static string? Timestamp(DateTimeOffset? value) => value is { } at ? EngramJson.FormatTimestamp(at) : null;
}
