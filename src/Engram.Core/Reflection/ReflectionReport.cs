namespace Engram.Core.Reflection;

/// <summary>What a reflection run is asked to do (the body of <c>POST /v1/reflect</c>; the CLI's flags).</summary>
public sealed record ReflectRequest
{
    /// <summary>Only scopes with this user_id (likewise the other fields); none: every scope the caller sees.</summary>
    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    /// <summary>Plan only: read, compare and ask the model, write nothing and leave the watermarks.</summary>
    public bool DryRun { get; init; }

    /// <summary>Only near-duplicates (no reflections): needs no model; flagged without one, merged with one.</summary>
    public bool DuplicatesOnly { get; init; }
}

/// <summary>What one run did (or, dry, would do).</summary>
public sealed record ReflectionReport(
    bool DryRun,
    bool ModelUsed,
    int ScopesChanged,
    int MemoriesRead,
    int ReflectionsWritten,
    int DuplicatesFlagged,
    int DuplicatesMerged,
    IReadOnlyList<ScopeReport> Scopes);

/// <summary>One scope's part of a run.</summary>
public sealed record ScopeReport(
    string? UserId,
    string? AgentId,
    string? SessionId,
    string? Namespace,
    int NewMemories,
    IReadOnlyList<ReflectionWritten> Reflections,
    IReadOnlyList<DuplicateFound> Duplicates);

/// <summary>A reflection: its id (null in a dry run), its text and the memories it was derived from.</summary>
public sealed record ReflectionWritten(string? Id, string Content, IReadOnlyList<string> DerivedFrom);

/// <summary>A near-duplicate: <see cref="DuplicateId"/> is marked duplicate_of <see cref="KeptId"/>; merged (kept memory rewritten) or flagged for review.</summary>
public sealed record DuplicateFound(string DuplicateId, string KeptId, double Similarity, string Action, string? MergedContent)
{
    public const string Flagged = "flagged";
    public const string Merged = "merged";

    /// <summary>The kept memory changed (or went) while the model merged the pair: nothing was written; the next run sees the pair again.</summary>
    public const string Skipped = "skipped";
}
