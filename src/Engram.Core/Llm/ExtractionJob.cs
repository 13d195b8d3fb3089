using System.Text.Json.Serialization;

namespace Engram.Core.Llm;

/// <summary>The states of an extraction job (GET /v1/jobs/{id}).</summary>
public static class ExtractionStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

/// <summary>
/// One extraction of one conversation, as the store keeps it: the input (the raw conversation), the model's plan once
/// it has one (persisted before anything is applied, so a restart resumes without asking again), what has been applied,
/// the resulting memory ids and the error of a failed job.
/// </summary>
public sealed record ExtractionJob
{
    public required string Id { get; init; }

    [JsonIgnore]
    public string Tenant { get; init; } = "";

    public required string ConversationId { get; init; }

    /// <summary>Who sent the conversation (their history actor).</summary>
    public required string Actor { get; init; }

    public required string Status { get; init; }

    /// <summary>How many times a worker has taken the job (a retry or a take-over after a crash counts).</summary>
    public int Attempts { get; init; }

    public DateTimeOffset NextAttemptAt { get; init; }

    [JsonIgnore]
    public string? LeaseOwner { get; init; }

    [JsonIgnore]
    public DateTimeOffset? LeaseUntil { get; init; }

    public required StoredConversation Input { get; init; }

    /// <summary>The facts and the decisions the model made (null until it has answered).</summary>
    public ExtractionPlan? Plan { get; init; }

    /// <summary>The decisions applied so far, in order (a resumed job skips these).</summary>
    public IReadOnlyList<AppliedDecision> Applied { get; init; } = [];

    public IReadOnlyList<string> MemoryIds { get; init; } = [];

    public string? Error { get; init; }

    /// <summary>The model that made the plan.</summary>
    public string? Model { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }

    [JsonIgnore]
    public bool IsFinished => Status is ExtractionStatus.Succeeded or ExtractionStatus.Failed;
}

/// <summary>The raw record of a conversation: what the caller sent, stamped with their key's scope.</summary>
/// <param name="ScopeUserId">The user_id the caller's key is confined to (the job writes within it), if any.</param>
/// <param name="ScopeAgentId">The agent_id the caller's key is confined to, if any.</param>
public sealed record StoredConversation(Conversation Conversation, string? ScopeUserId = null, string? ScopeAgentId = null);

/// <summary>One atomic fact the model found in a conversation.</summary>
public sealed record ExtractedFact
{
    public string? Text { get; init; }

    /// <summary>fact, preference, event, ... (default fact).</summary>
    public string? Type { get; init; }

    public IReadOnlyList<string>? Entities { get; init; }

    public double? Importance { get; init; }

    public double? Valence { get; init; }

    /// <summary>When the fact became true, if the conversation says.</summary>
    public DateTimeOffset? ValidFrom { get; init; }

    /// <summary>Relations between the entities that the conversation states.</summary>
    public IReadOnlyList<FactRelation>? Relations { get; init; }
}

public sealed record FactRelation
{
    public string? From { get; init; }

    public string? To { get; init; }

    public string? RelationType { get; init; }
}

/// <summary>The decision for one fact, with the local number the model used mapped back to a memory id.</summary>
/// <param name="Fact">Index into <see cref="ExtractionPlan.Facts"/>.</param>
/// <param name="Event">ADD, UPDATE, SUPERSEDE or NONE.</param>
/// <param name="Text">The memory's new text (the fact's, or the model's rewrite for UPDATE).</param>
/// <param name="TargetId">The existing memory an UPDATE rewrites or a SUPERSEDE replaces.</param>
/// <param name="TargetVersion">
/// The target's version the model read (null in plans saved before it was recorded): an UPDATE whose target changed
/// since then adds the fact instead of rewriting the memory, which would drop that change.
/// </param>
public sealed record PlannedDecision(int Fact, string Event, string Text, string? TargetId, string? Reason, long? TargetVersion = null);

public sealed record ExtractionPlan(IReadOnlyList<ExtractedFact> Facts, IReadOnlyList<PlannedDecision> Decisions);

/// <param name="Index">Index into <see cref="ExtractionPlan.Decisions"/>.</param>
/// <param name="MemoryId">The memory written (created, rewritten or the replacement), null for NONE or a skipped one.</param>
/// <param name="Note">Why a decision was skipped (its target was deleted meanwhile, its text was refused).</param>
public sealed record AppliedDecision(int Index, string Event, string? MemoryId, string? TargetId, string? Note = null);

/// <summary>Where extraction jobs and the raw conversations live (both stores implement it).</summary>
public interface IExtractionJobStore
{
    /// <summary>Writes the conversation (raw record and its first history row) and its queued job in one transaction.</summary>
    Task EnqueueExtractionAsync(ExtractionJob job, CancellationToken ct = default);

    /// <summary>
    /// Takes the oldest due job (queued and due, or running with an expired lease: its worker died) for
    /// <paramref name="owner"/> until <paramref name="leaseUntil"/>, counting an attempt; null when none is due.
    /// </summary>
    Task<ExtractionJob?> ClaimExtractionJobAsync(string owner, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken ct = default);

    /// <summary>
    /// Saves the job's state (status, next attempt, lease, plan, applied, memory ids, error, model) if
    /// <paramref name="owner"/> still holds its lease; false when it does not (another worker took it over).
    /// </summary>
    Task<bool> SaveExtractionJobAsync(ExtractionJob job, string owner, CancellationToken ct = default);

    Task<ExtractionJob?> GetExtractionJobAsync(string tenant, string id, CancellationToken ct = default);

    /// <summary>The tenant's newest <paramref name="limit"/> jobs, newest first (the admin page's job list).</summary>
    Task<IReadOnlyList<ExtractionJob>> ListRecentExtractionJobsAsync(string tenant, int limit, CancellationToken ct = default);

    /// <summary>Jobs queued or running (all tenants when <paramref name="tenant"/> is null).</summary>
    Task<long> CountPendingExtractionJobsAsync(string? tenant, CancellationToken ct = default);
}
