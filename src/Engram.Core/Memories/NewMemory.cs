using System.Text.Json;
using Engram.Core.Common;

namespace Engram.Core.Memories;

/// <summary>What a caller sends to create a memory (the JSON body of <c>POST /v1/memories</c>).</summary>
public sealed record NewMemory
{
    public string? Content { get; init; }

    /// <summary>Default <c>fact</c>.</summary>
    public string? Type { get; init; }

    /// <summary>Default <c>long_term</c>.</summary>
    public MemoryTier? Tier { get; init; }

    /// <summary>0..1, default 0.5.</summary>
    public double? Importance { get; init; }

    public double? Valence { get; init; }

    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>Entity names the memory mentions; matched to knowledge-graph entities by name, case-insensitively.</summary>
    public IReadOnlyList<string>? Entities { get; init; }

    public JsonElement? Metadata { get; init; }

    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    public string? Source { get; init; }

    /// <summary>For imports and backfills (e.g. a conversation's date); default now.</summary>
    public DateTimeOffset? CreatedAt { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Shorthand for <see cref="ExpiresAt"/> = now + ttl; not both.</summary>
    public long? TtlSeconds { get; init; }

    public DateTimeOffset? ValidFrom { get; init; }

    public DateTimeOffset? ValidTo { get; init; }

    /// <summary>
    /// A conversation to extract memories from instead of <see cref="Content"/> (<c>POST /v1/memories</c> only):
    /// stored durably, then extracted by a background job (202 with its id), or stored verbatim with <see cref="Infer"/> false.
    /// </summary>
    public IReadOnlyList<Llm.ConversationMessage>? Messages { get; init; }

    /// <summary>With <see cref="Messages"/>: true (default) asks the model for facts; false stores each user message as a memory.</summary>
    public bool? Infer { get; init; }
}

/// <summary>A partial update (the JSON body of <c>PATCH /v1/memories/{id}</c>): absent fields stay, null clears.</summary>
public sealed record MemoryPatch
{
    public Optional<string?> Content { get; init; }

    public Optional<string?> Type { get; init; }

    public Optional<MemoryTier?> Tier { get; init; }

    public Optional<double?> Importance { get; init; }

    public Optional<double?> Valence { get; init; }

    public Optional<IReadOnlyList<string>?> Tags { get; init; }

    /// <summary>Replaces the whole list; null clears it.</summary>
    public Optional<IReadOnlyList<string>?> Entities { get; init; }

    public Optional<JsonElement?> Metadata { get; init; }

    public Optional<string?> Source { get; init; }

    public Optional<DateTimeOffset?> ExpiresAt { get; init; }

    public Optional<long?> TtlSeconds { get; init; }

    public Optional<DateTimeOffset?> ValidFrom { get; init; }

    public Optional<DateTimeOffset?> ValidTo { get; init; }

    /// <summary>The memory that replaces this one (null: current again); extraction's SUPERSEDE sets it with valid_to.</summary>
    public Optional<string?> SupersededBy { get; init; }

    // Scope fields are accepted by the parser only to refuse them with a clear message.
    public Optional<string?> UserId { get; init; }

    public Optional<string?> AgentId { get; init; }

    public Optional<string?> SessionId { get; init; }

    public Optional<string?> Namespace { get; init; }
}

public enum DuplicatePolicy
{
    /// <summary>Return the existing memory, flagged as a duplicate (HTTP 200).</summary>
    Return,

    /// <summary>Refuse with a conflict naming the existing id (HTTP 409).</summary>
    Reject,

    /// <summary>Store it anyway.</summary>
    Allow,
}

public static class DuplicatePolicies
{
    /// <summary>
    /// The wire word of a policy (REST's <c>on_duplicate</c> query parameter, the MCP argument, the CLI flag):
    /// absent or <c>return</c>, <c>reject</c>, <c>allow</c>.
    /// </summary>
    public static DuplicatePolicy Parse(string? value) => value switch
    {
        null or "return" => DuplicatePolicy.Return,
        "reject" => DuplicatePolicy.Reject,
        "allow" => DuplicatePolicy.Allow,
        _ => throw new ValidationException("on_duplicate", $"on_duplicate must be return, reject or allow (got '{value}')"),
    };
}
