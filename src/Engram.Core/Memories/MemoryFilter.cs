namespace Engram.Core.Memories;

public enum TagMatch
{
    All,
    Any,
}

/// <summary>Filters shared by listing, bulk delete and (later) search. All set filters must hold.</summary>
public sealed record MemoryFilter
{
    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    public IReadOnlyList<string>? Types { get; init; }

    public IReadOnlyList<MemoryTier>? Tiers { get; init; }

    public IReadOnlyList<string>? Tags { get; init; }

    public TagMatch TagsMatch { get; init; } = TagMatch.All;

    /// <summary>Only memories naming this entity (compared by <see cref="EntityNames.Key"/>, so case-insensitively).</summary>
    public string? Entity { get; init; }

    /// <summary>Metadata equality: key path (dots for nesting) to the value's text (strings, numbers, true/false).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public string? Source { get; init; }

    public DateTimeOffset? CreatedAfter { get; init; }

    public DateTimeOffset? CreatedBefore { get; init; }

    public DateTimeOffset? UpdatedAfter { get; init; }

    public DateTimeOffset? UpdatedBefore { get; init; }

    /// <summary>Leave out memories another has superseded (listing sets this unless include_superseded=true).</summary>
    public bool ExcludeSuperseded { get; init; }

    public bool HasScope => UserId is not null || AgentId is not null || SessionId is not null || Namespace is not null;

    public static MemoryFilter None { get; } = new();
}
