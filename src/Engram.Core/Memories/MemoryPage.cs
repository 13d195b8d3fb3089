namespace Engram.Core.Memories;

/// <summary>One page of a listing; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record MemoryPage(IReadOnlyList<Memory> Items, string? NextCursor);

/// <summary>The result of a create: the memory, whether it was an existing duplicate, and the change's sequence number.</summary>
public sealed record WriteResult(Memory Memory, bool Duplicate, long Seq);

/// <summary>One item's outcome in a batch create.</summary>
public sealed record BatchItemResult(string Status, string? Id, long? Seq, string? Error)
{
    public const string Created = "created";
    public const string DuplicateStatus = "duplicate";
    public const string ErrorStatus = "error";
}

public sealed record BulkDeleteResult(int Deleted, long? LastSeq);

/// <summary>One entry of a memory's history.</summary>
public sealed record HistoryEntry
{
    public required long Seq { get; init; }

    public required string MemoryId { get; init; }

    /// <summary>created, updated, deleted or expired.</summary>
    public required string Event { get; init; }

    public required string Actor { get; init; }

    public required DateTimeOffset At { get; init; }

    public required long Version { get; init; }

    /// <summary>For updates: field → {"from", "to"}; for other events: the whole memory at that moment.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(Common.StoredJsonConverter))]
    public required System.Text.Json.JsonElement Changes { get; init; }
}

public static class HistoryEvents
{
    public const string Created = "created";
    public const string Updated = "updated";
    public const string Deleted = "deleted";
    public const string Expired = "expired";
}

