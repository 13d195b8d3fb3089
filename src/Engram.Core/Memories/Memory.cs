using System.Text.Json;

namespace Engram.Core.Memories;

/// <summary>
/// One memory as stored and as every interface shows it (JSON: snake_case, exactly these fields).
/// The tenant is deliberately not a field: it comes from the caller and never leaves the store.
/// </summary>
public record Memory
{
    public required string Id { get; init; }

    public required string Content { get; init; }

    /// <summary>SHA-256 (hex) of the normalised content; equal hashes in one scope are duplicates.</summary>
    public required string ContentHash { get; init; }

    public required string Type { get; init; }

    public required MemoryTier Tier { get; init; }

    public required double Importance { get; init; }

    public double? Valence { get; init; }

    public required IReadOnlyList<string> Tags { get; init; }

    /// <summary>Names of the people, places and things the memory mentions (first spelling kept; compared case-insensitively).</summary>
    public required IReadOnlyList<string> Entities { get; init; }

    /// <summary>Always a JSON object.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(Common.StoredJsonConverter))]
    public required JsonElement Metadata { get; init; }

    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    public string? Source { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset UpdatedAt { get; init; }

    public DateTimeOffset? LastAccessedAt { get; init; }

    public long AccessCount { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    public DateTimeOffset? ValidFrom { get; init; }

    public DateTimeOffset? ValidTo { get; init; }

    /// <summary>
    /// The memory that replaced this one (set by extraction's SUPERSEDE, with <see cref="ValidTo"/>): no longer current,
    /// so listing and search leave it out unless asked for <c>include_superseded</c>.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? SupersededBy { get; init; }

    /// <summary>Starts at 1 and grows by one with every update; the HTTP ETag.</summary>
    public required long Version { get; init; }

    /// <summary>
    /// The version an update gives the memory: one more. A memory already at <see cref="long.MaxValue"/> (which only an
    /// edited import could have brought; imports now refuse versions above <see cref="Storage.Transfer.ImportValidation.MaxVersion"/>)
    /// cannot be updated: a 409, where the addition would have wrapped to a negative version.
    /// </summary>
    public long NextVersion() => Version < long.MaxValue
        ? Version + 1
        : throw new Common.ConflictException($"memory '{Id}' is at version {Version}, the highest a version can be, and cannot be updated; " +
            "create its content as a new memory instead");
}
