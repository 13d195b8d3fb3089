using System.ComponentModel;
using System.Text.Json;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Server.Mcp;

/// <summary>
/// The <c>filters</c> argument of memory_search and memory_list: the REST search filters (the same
/// names and meaning) without the scope fields, which are top-level arguments of every memory tool.
/// </summary>
[Description("Filters applied before ranking or paging; every filter given must hold.")]
internal sealed record McpMemoryFilters
{
    [Description("Memory types to match (any of them), e.g. [\"preference\"].")]
    public IReadOnlyList<string>? Type { get; init; }

    [Description("Tiers to match (any of them): working, short_term, long_term.")]
    public IReadOnlyList<MemoryTier>? Tier { get; init; }

    [Description("Tags the memory must carry (all of them, or any with tags_match=any).")]
    public IReadOnlyList<string>? Tags { get; init; }

    [Description("all (default: every tag given) or any (at least one).")]
    public string? TagsMatch { get; init; }

    [Description("Only memories naming this entity (case-insensitive).")]
    public string? Entity { get; init; }

    [Description("Only memories from this source.")]
    public string? Source { get; init; }

    [Description("Equality on metadata keys (dots for nesting, e.g. {\"project.name\":\"apollo\"}); values are strings, numbers or booleans.")]
    public IReadOnlyDictionary<string, JsonElement>? Metadata { get; init; }

    [Description("Created at or after this ISO 8601 time.")]
    public DateTimeOffset? CreatedAfter { get; init; }

    [Description("Created before this ISO 8601 time.")]
    public DateTimeOffset? CreatedBefore { get; init; }

    [Description("Last updated at or after this ISO 8601 time.")]
    public DateTimeOffset? UpdatedAfter { get; init; }

    [Description("Last updated before this ISO 8601 time.")]
    public DateTimeOffset? UpdatedBefore { get; init; }

    /// <summary>The REST search filters: these plus the scope arguments.</summary>
    public static SearchFilters ToSearchFilters(McpMemoryFilters? filters, McpScope scope) => new()
    {
        UserId = scope.UserId,
        AgentId = scope.AgentId,
        SessionId = scope.SessionId,
        Namespace = scope.Namespace,
        Type = filters?.Type,
        Tier = filters?.Tier,
        Tags = filters?.Tags,
        TagsMatch = filters?.TagsMatch,
        Entity = filters?.Entity,
        Source = filters?.Source,
        Metadata = filters?.Metadata,
        CreatedAfter = filters?.CreatedAfter,
        CreatedBefore = filters?.CreatedBefore,
        UpdatedAfter = filters?.UpdatedAfter,
        UpdatedBefore = filters?.UpdatedBefore,
    };
}

/// <summary>The <c>weights</c> argument of memory_search: REST's per-request weights, described for a model.</summary>
[Description("Per-search weights of the ranking signals (0 turns a signal off); a missing weight takes the server's default.")]
internal sealed record McpSearchWeights
{
    [Description("Meaning similarity (embeddings).")]
    public double? Semantic { get; init; }

    [Description("Word overlap (BM25).")]
    public double? Lexical { get; init; }

    [Description("How recently the memory was created.")]
    public double? Recency { get; init; }

    [Description("The memory's importance.")]
    public double? Importance { get; init; }

    [Description("Memories naming the entities the query names.")]
    public double? Entity { get; init; }

    public SearchWeights ToSearchWeights() =>
        new() { Semantic = Semantic, Lexical = Lexical, Recency = Recency, Importance = Importance, Entity = Entity };
}
