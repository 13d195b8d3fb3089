using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Server.Http;

namespace Engram.Cli.Client;

/// <summary>
/// What the CLI's memory commands need from Engram. Two backends implement it: the
/// <see cref="MemoryService"/> over a local data folder, and the REST API of a running server.
/// Both return the same types the REST API serializes, and both fail with the Core exceptions
/// (or <see cref="BackendUnavailableException"/>), so commands print and exit the same either way.
/// </summary>
internal interface IMemoryClient : IGraphClient, IKeyValueClient, IAsyncDisposable
{
    Task<WrittenMemory> AddAsync(NewMemory memory, DuplicatePolicy policy, CancellationToken ct);

    Task<Memory> GetAsync(string id, CancellationToken ct);

    Task<MemoryListResponse> ListAsync(MemoryFilter filter, int? limit, string? cursor, CancellationToken ct);

    Task<WrittenMemory> UpdateAsync(string id, MemoryPatch patch, long? expectedVersion, CancellationToken ct);

    /// <summary>Deletes one memory; returns the change's sequence number.</summary>
    Task<long> DeleteAsync(string id, CancellationToken ct);

    /// <summary>Deletes every memory matching <paramref name="filter"/>; the caller has already checked scope and confirmation.</summary>
    Task<BulkDeleteResponse> DeleteManyAsync(MemoryFilter filter, CancellationToken ct);

    Task<HistoryResponse> GetHistoryAsync(string id, CancellationToken ct);

    Task<StoreStatistics> GetStatsAsync(CancellationToken ct);

    Task<SearchResponse> SearchAsync(SearchRequest request, CancellationToken ct);
}
