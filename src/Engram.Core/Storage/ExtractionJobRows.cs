using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Llm;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage;

/// <summary>The extraction-job columns both stores select and write, mapped once (<see cref="IExtractionJobStore"/>).</summary>
internal static class ExtractionJobRows
{
    public const string Select =
        "SELECT j.id, j.tenant, j.conversation_id, j.actor, j.status, j.attempts, j.next_attempt_at, j.lease_owner, j.lease_until, " +
        "c.body, j.plan, j.applied, j.memory_ids, j.error, j.model, j.created_at, j.updated_at " +
        "FROM extraction_jobs j JOIN conversations c ON c.id = j.conversation_id";

    /// <summary>The pending condition, with the time as the first parameter of the caller's dialect.</summary>
    public const string DueCondition = "(status = 'queued' AND next_attempt_at <= {0}) OR (status = 'running' AND lease_until < {0})";

    public static ExtractionJob Read<TRow>(TRow row) where TRow : IStoreRow => new()
    {
        Id = row.GetText(0),
        Tenant = row.GetText(1),
        ConversationId = row.GetText(2),
        Actor = row.GetText(3),
        Status = row.GetText(4),
        Attempts = (int)row.GetInt64(5),
        NextAttemptAt = FromMs(row.GetInt64(6)),
        LeaseOwner = row.GetTextOrNull(7),
        LeaseUntil = FromMs(row.GetInt64OrNull(8)),
        Input = JsonSerializer.Deserialize<StoredConversation>(row.GetText(9), EngramJson.Options)!,
        Plan = row.GetTextOrNull(10) is { } plan ? JsonSerializer.Deserialize<ExtractionPlan>(plan, EngramJson.Options) : null,
        Applied = row.GetTextOrNull(11) is { } applied ? JsonSerializer.Deserialize<List<AppliedDecision>>(applied, EngramJson.Options) ?? [] : [],
        MemoryIds = row.GetTextOrNull(12) is { } ids ? JsonSerializer.Deserialize<List<string>>(ids, EngramJson.Options) ?? [] : [],
        Error = row.GetTextOrNull(13),
        Model = row.GetTextOrNull(14),
        CreatedAt = FromMs(row.GetInt64(15)),
        UpdatedAt = FromMs(row.GetInt64(16)),
    };

    public static string Body(ExtractionJob job) => JsonSerializer.Serialize(job.Input, EngramJson.Options);

    public static string? Plan(ExtractionJob job) => job.Plan is null ? null : JsonSerializer.Serialize(job.Plan, EngramJson.Options);

    public static string Applied(ExtractionJob job) => JsonSerializer.Serialize(job.Applied, EngramJson.Options);

    public static string MemoryIds(ExtractionJob job) => JsonSerializer.Serialize(job.MemoryIds, EngramJson.Options);
}
