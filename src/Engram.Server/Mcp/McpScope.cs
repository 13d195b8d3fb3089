using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Server.Mcp;

/// <summary>
/// The scope arguments every memory tool takes at the top level (user_id, agent_id, session_id,
/// namespace, as in mem0's tools). For search, list and stats they filter; for a tool that names a
/// memory by id they must match that memory, else it answers as for a missing id, so a model that
/// works in one scope can never read or change another's memory by guessing an id. They narrow what
/// the caller may see and never widen it: the key's own scope is applied by the services.
/// </summary>
internal sealed record McpScope(string? UserId, string? AgentId, string? SessionId, string? Namespace)
{
    /// <summary>The scope arguments, refusing empty values (leave a field out to match every value).</summary>
    public static McpScope Of(string? userId, string? agentId, string? sessionId, string? @namespace)
    {
        NotBlank("user_id", userId);
        NotBlank("agent_id", agentId);
        NotBlank("session_id", sessionId);
        NotBlank("namespace", @namespace);
        return new McpScope(userId, agentId, sessionId, @namespace);
    }

    /// <summary>True when every given scope field equals the memory's.</summary>
    public bool Matches(Memory memory) =>
        Same(UserId, memory.UserId) && Same(AgentId, memory.AgentId) && Same(SessionId, memory.SessionId) && Same(Namespace, memory.Namespace);

    /// <summary>
    /// True when every given scope field equals that of the memory a history describes, read from its
    /// first snapshot entry (created, deleted and expired entries hold the whole memory; scope fields
    /// never change), so the history of a deleted memory is checked too.
    /// </summary>
    public bool Matches(IReadOnlyList<HistoryEntry> history)
    {
        if (UserId is null && AgentId is null && SessionId is null && Namespace is null)
        {
            return true;
        }
        var snapshot = history.FirstOrDefault(e => e.Event != HistoryEvents.Updated && e.Changes.ValueKind == JsonValueKind.Object);
        return snapshot is not null
            && Same(UserId, Text(snapshot.Changes, "user_id")) && Same(AgentId, Text(snapshot.Changes, "agent_id"))
            && Same(SessionId, Text(snapshot.Changes, "session_id")) && Same(Namespace, Text(snapshot.Changes, "namespace"));
    }

    /// <summary>The same answer as <see cref="MemoryService"/> gives for a missing id.</summary>
    public static NotFoundException NotFound(string id) => new($"no memory with id '{id}'");

    /// <summary>The same answer as <see cref="MemoryService.GetHistoryAsync"/> gives for an id without history.</summary>
    public static NotFoundException NoHistory(string id) => new($"no memory with id '{id}' has ever existed");

    private static bool Same(string? wanted, string? actual) => wanted is null || string.Equals(wanted, actual, StringComparison.Ordinal);

    private static string? Text(JsonElement snapshot, string property) =>
        snapshot.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static void NotBlank(string field, string? value)
    {
        if (value is not null && value.AsSpan().Trim().IsEmpty)
        {
            throw new ValidationException(field, $"{field} must not be empty; leave it out to match every value");
        }
    }
}
