namespace Engram.Core.Search;

/// <summary>
/// Retrieval defaults (configuration section <c>Engram:Search</c>; also SEMANTIC_WEIGHT, RECENCY_WEIGHT,
/// TOP_K_RETRIEVAL). A request may override the weights and the half-life per search.
/// </summary>
public sealed class SearchOptions
{
    public double SemanticWeight { get; set; } = 0.5;

    public double LexicalWeight { get; set; } = 0.5;

    public double RecencyWeight { get; set; }

    public double ImportanceWeight { get; set; }

    public double RecencyHalfLifeDays { get; set; } = 30;

    /// <summary>Default k.</summary>
    public int TopK { get; set; } = 10;

    public int MaxK { get; set; } = 100;

    /// <summary>How many candidates each index contributes per requested result (before fusion).</summary>
    public int CandidatesPerResult { get; set; } = 10;

    public int MinCandidates { get; set; } = 100;

    public IEnumerable<string> Validate()
    {
        foreach (var (name, value) in new[] { ("SemanticWeight", SemanticWeight), ("LexicalWeight", LexicalWeight), ("RecencyWeight", RecencyWeight), ("ImportanceWeight", ImportanceWeight) })
        {
            if (!double.IsFinite(value) || value < 0)
            {
                yield return $"Engram:Search:{name} must be a number >= 0";
            }
        }
        if (!(RecencyHalfLifeDays > 0))
        {
            yield return "Engram:Search:RecencyHalfLifeDays must be > 0";
        }
        if (MaxK < 1 || TopK < 1 || TopK > MaxK)
        {
            yield return "Engram:Search:TopK must be between 1 and MaxK";
        }
        if (CandidatesPerResult < 1 || MinCandidates < 1)
        {
            yield return "Engram:Search:CandidatesPerResult and MinCandidates must be at least 1";
        }
    }
}
