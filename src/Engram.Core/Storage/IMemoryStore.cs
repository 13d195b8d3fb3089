using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Core.Storage;

/// <summary>
/// The system of record. Every method is confined to <see cref="Caller.Tenant"/>; every change
/// writes the memory, its history entry and a change-log entry in one transaction, and a returned
/// task completes only after that transaction is durable. Expired memories are never returned.
/// Implementations: SQLite (embedded default); PostgreSQL later, behind this same contract.
/// </summary>
public interface IMemoryStore : IAsyncDisposable, IVectorStore
{
    /// <summary>"sqlite", "postgres": shown by /health.</summary>
    string Kind { get; }

    /// <summary>A random identity given to the store when it was created; derived files record it.</summary>
    string StoreId { get; }

    /// <summary>
    /// Stores <paramref name="memory"/> (already validated, hashed and stamped) unless a live memory
    /// with the same content hash and the same scope exists; then <paramref name="policy"/> decides:
    /// return it (<c>Duplicate = true</c>), throw <see cref="ConflictException"/>, or store anyway.
    /// </summary>
    Task<WriteResult> CreateAsync(Caller caller, Memory memory, DuplicatePolicy policy, CancellationToken ct = default);

    /// <summary>Creates many memories in one transaction; a rejected duplicate is an error item, not an exception.</summary>
    Task<IReadOnlyList<BatchItemResult>> CreateManyAsync(Caller caller, IReadOnlyList<Memory> memories, DuplicatePolicy policy, CancellationToken ct = default);

    Task<Memory?> GetAsync(Caller caller, string id, CancellationToken ct = default);

    /// <summary>Newest first; <paramref name="cursor"/> is a <see cref="MemoryPage.NextCursor"/> from an earlier page.</summary>
    Task<MemoryPage> ListAsync(Caller caller, MemoryFilter filter, int limit, string? cursor, CancellationToken ct = default);

    /// <summary>
    /// Applies <paramref name="apply"/> to the current memory inside the write transaction, bumps the
    /// version and records the changed fields. Throws <see cref="NotFoundException"/>, or
    /// <see cref="PreconditionFailedException"/> when <paramref name="expectedVersion"/> is stale.
    /// </summary>
    Task<WriteResult> UpdateAsync(Caller caller, string id, long? expectedVersion, Func<Memory, Memory> apply, CancellationToken ct = default);

    /// <summary>Deletes one memory; returns the change's sequence number, or null when there was none.</summary>
    Task<long?> DeleteAsync(Caller caller, string id, long? expectedVersion = null, CancellationToken ct = default);

    /// <summary>Deletes every memory that matches <paramref name="filter"/> (callers insist on a scope).</summary>
    Task<BulkDeleteResult> DeleteManyAsync(Caller caller, MemoryFilter filter, CancellationToken ct = default);

    /// <summary>Oldest first; kept after the memory is deleted. Empty when the id never existed.</summary>
    Task<IReadOnlyList<HistoryEntry>> GetHistoryAsync(Caller caller, string id, CancellationToken ct = default);

    /// <summary>Deletes up to <paramref name="max"/> memories past their expiry, in every tenant; returns how many.</summary>
    Task<int> DeleteExpiredAsync(int max, CancellationToken ct = default);

    /// <summary>Live memories of the tenant matching <paramref name="filter"/> (all when null), counted by type and tier.</summary>
    /// <summary>Store-wide counts of memories (by tier and type), key-value keys and graph entities and relations, as the writer keeps them: no scan.</summary>
    Task<StoreCounts> ReadCountsAsync(CancellationToken ct = default);

    Task<MemoryCounts> GetStatsAsync(Caller caller, MemoryFilter? filter = null, CancellationToken ct = default);

    /// <summary>The newest sequence number in the change log (0 when empty).</summary>
    Task<long> GetLastSeqAsync(CancellationToken ct = default);

    /// <summary>Change-log entries after <paramref name="afterSeq"/>, in order: what indexes and other instances follow.</summary>
    Task<IReadOnlyList<ChangeRecord>> ReadChangesAsync(long afterSeq, int max, CancellationToken ct = default);

    /// <summary>
    /// Change-log entries of one <paramref name="entity"/> kind after <paramref name="afterSeq"/>, in
    /// order, and how far the log was read: a follower of one kind moves past the others' entries (a
    /// busy key-value swarm writes one per SET) without loading them.
    /// </summary>
    Task<ChangePage> ReadChangesAsync(long afterSeq, int max, string entity, CancellationToken ct = default);

    /// <summary>
    /// The live memories among <paramref name="ids"/>, in any tenant, with their tenant: what the index
    /// follower loads after reading the change log. Missing, deleted or expired ids are left out.
    /// </summary>
    Task<IReadOnlyList<TenantMemory>> GetForIndexAsync(IReadOnlyList<string> ids, CancellationToken ct = default);

    /// <summary>Ids of up to <paramref name="max"/> memories matching <paramref name="filter"/> (filters the indexes cannot evaluate).</summary>
    Task<IReadOnlyList<string>> ListIdsAsync(Caller caller, MemoryFilter filter, int max, CancellationToken ct = default);

    /// <summary>Live memories of this tenant by id, in the order given; unknown ids are left out.</summary>
    Task<IReadOnlyList<Memory>> GetManyAsync(Caller caller, IReadOnlyList<string> ids, CancellationToken ct = default);

    /// <summary>
    /// Adds <c>count</c> accesses at <c>at</c> to each memory: bookkeeping, not a change (no version,
    /// history or change-log entry), so it is cheap to batch after searches.
    /// </summary>
    Task RecordAccessAsync(string tenant, IReadOnlyList<(string Id, int Count, DateTimeOffset At)> accesses, CancellationToken ct = default);

    /// <summary>Bytes the store occupies on disk (database and its journal).</summary>
    long SizeBytes { get; }

    /// <summary>Throws when the store cannot answer a trivial query.</summary>
    Task CheckAsync(CancellationToken ct = default);
}

/// <summary>A memory with the tenant it belongs to (only for the system-level index follower).</summary>
public sealed record TenantMemory(string Tenant, Memory Memory);

/// <summary>Up to a page of one kind's changes; every entry up to <see cref="ReadThrough"/> was read (the next page starts after it).</summary>
public sealed record ChangePage(IReadOnlyList<ChangeRecord> Changes, long ReadThrough);

/// <summary>One change-log entry: which record of which tenant changed, and how.</summary>
public sealed record ChangeRecord(long Seq, string Tenant, string Entity, string EntityId, string Op, DateTimeOffset At)
{
    public const string Upsert = "upsert";
    public const string Delete = "delete";
    public const string MemoryEntity = "memory";
    public const string KeyValueEntity = "kv";
}
