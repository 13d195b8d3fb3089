using Engram.Core.Memories;

namespace Engram.Core.Search;

/// <summary>The body of <c>POST /v1/search</c>.</summary>
public sealed record SearchRequest
{
    public string? Query { get; init; }

    /// <summary>Default from configuration (TOP_K_RETRIEVAL, 10); 1..100.</summary>
    public int? K { get; init; }

    /// <summary>The same filters as <c>GET /v1/memories</c>, applied before the top-k cut.</summary>
    public SearchFilters? Filters { get; init; }

    /// <summary>Results scoring below this are dropped.</summary>
    public double? MinScore { get; init; }

    public SearchWeights? Weights { get; init; }

    public double? RecencyHalfLifeDays { get; init; }

    /// <summary>Adds each signal's contribution to every result.</summary>
    public bool Explain { get; init; }

    /// <summary>Also return memories another has superseded (left out by default).</summary>
    public bool IncludeSuperseded { get; init; }
}

/// <summary>Per-request weights; a missing weight takes the configured default.</summary>
public sealed record SearchWeights
{
    public double? Semantic { get; init; }

    public double? Lexical { get; init; }

    public double? Recency { get; init; }

    public double? Importance { get; init; }

    public double? Entity { get; init; }
}

/// <summary>Search filters in JSON form, with the same names and meaning as the listing's query parameters.</summary>
public sealed record SearchFilters
{
    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    public string? Source { get; init; }

    /// <summary>One type or several (any of them).</summary>
    public IReadOnlyList<string>? Type { get; init; }

    public IReadOnlyList<MemoryTier>? Tier { get; init; }

    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>"all" (default) or "any".</summary>
    public string? TagsMatch { get; init; }

    /// <summary>Only memories naming this entity (case-insensitive).</summary>
    public string? Entity { get; init; }

    /// <summary>Equality on metadata keys (dots for nesting); values are strings, numbers or booleans.</summary>
    public IReadOnlyDictionary<string, System.Text.Json.JsonElement>? Metadata { get; init; }

    public DateTimeOffset? CreatedAfter { get; init; }

    public DateTimeOffset? CreatedBefore { get; init; }

    public DateTimeOffset? UpdatedAfter { get; init; }

    public DateTimeOffset? UpdatedBefore { get; init; }

    /// <summary>The JSON form of a listing filter (the inverse of <see cref="SearchService.ToFilter"/>).</summary>
    public static SearchFilters From(MemoryFilter f) => new()
    {
        UserId = f.UserId,
        AgentId = f.AgentId,
        SessionId = f.SessionId,
        Namespace = f.Namespace,
        Source = f.Source,
        Type = f.Types,
        Tier = f.Tiers,
        Tags = f.Tags,
        TagsMatch = f.Tags is null ? null : f.TagsMatch == TagMatch.Any ? "any" : "all",
        Entity = f.Entity,
        Metadata = f.Metadata?.ToDictionary(kv => kv.Key, kv => System.Text.Json.JsonSerializer.SerializeToElement(kv.Value, Common.EngramJson.Options)),
        CreatedAfter = f.CreatedAfter,
        CreatedBefore = f.CreatedBefore,
        UpdatedAfter = f.UpdatedAfter,
        UpdatedBefore = f.UpdatedBefore,
    };
}

/// <summary>One result: the memory, its score, and (with explain) each signal's share.</summary>
public sealed record SearchHit(Memory Memory, double Score, SearchExplanation? Explain);

/// <summary>Raw signal values (0..1) and their weighted contributions, which add up to the score.</summary>
/// <remarks><c>Entity</c>: the share of the entities the query names (names linked to memories) that this memory names.</remarks>
public sealed record SearchExplanation(
    double Semantic, double Lexical, double Recency, double Importance, double Entity,
    double SemanticContribution, double LexicalContribution, double RecencyContribution, double ImportanceContribution, double EntityContribution,
    double Bm25, double Cosine);

public sealed record SearchResult(IReadOnlyList<SearchHit> Results, double TookMs)
{
    /// <summary>
    /// The store was away: the results are what the indexes and the copies of recent memories hold (changes since the
    /// last catch-up, another instance's writes and the latest access counts may be missing).
    /// </summary>
    public bool Stale { get; init; }

    /// <summary>With <see cref="Stale"/>: hits the indexes ranked whose memory had no copy to return (left out).</summary>
    public int Unavailable { get; init; }
}

/// <summary>One finished search of an instance (<see cref="SearchService.Completed"/>): the result is null when it failed or was cancelled.</summary>
public sealed record SearchCompleted(Common.Caller Caller, SearchRequest Request, string Kind, SearchResult? Result, double Seconds, bool Failed);
