using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Engram.Server.Http;

namespace Engram.Cli.Client;

/// <summary>
/// Runs the commands against a local data folder through the same <see cref="MemoryService"/> the
/// server uses. SQLite's WAL and busy timeout let this work while a server has the folder open.
/// </summary>
internal sealed partial class InProcessMemoryClient : IMemoryClient
{
    /// <summary>History records writes made here with this actor.</summary>
    public const string Actor = "cli";

    /// <summary>Who the commands act as: admin of the default tenant, or of the tenant a command names (<c>--tenant</c>).</summary>
    private Caller Caller { get; init; } = Caller.Default(Actor);

    private readonly IMemoryStore _store;
    private readonly MemoryService _memories;
    private EngramEngine? _engine;

    private readonly EngramServerOptions _options;

    /// <summary>READONLY_MODE (Engram:ReadOnly) holds in process too: the commands' writes are refused as the server's would be.</summary>
    private Core.Operations.WriteGate Gate { get; } = new();

    private InProcessMemoryClient(IMemoryStore store, EngramServerOptions options)
    {
        _store = store;
        _options = options;
        Gate.ReadOnly = options.ReadOnly;
        _memories = new MemoryService(store, options.Limits, TimeProvider.System, gate: Gate);
    }

    /// <summary>
    /// Opens the store in <paramref name="dataPath"/>. Unless <paramref name="createIfMissing"/>, a folder
    /// without a database is the user's mistake (a wrong --data) and is refused, rather than silently
    /// creating an empty store wherever the command happened to run.
    /// </summary>
    public static InProcessMemoryClient Open(string dataPath, bool createIfMissing, string? tenant = null)
    {
        if (StoreFactory.IsPostgres(dataPath))
        {
            return new InProcessMemoryClient(StoreFactory.Open(dataPath, TimeProvider.System), ConfiguredOptions.Load())
            {
                Caller = new Caller(tenant ?? Caller.DefaultTenant, Actor),
            };
        }
        var databasePath = Path.Combine(Path.GetFullPath(dataPath), SqliteMemoryStore.FileName);
        if (!createIfMissing && !File.Exists(databasePath))
        {
            throw new NotFoundException(
                $"no Engram database at '{databasePath}'; pass --data DIR (or set ENGRAM_DATA), --server URL, or add a memory first");
        }
        var options = ConfiguredOptions.Load();
        // Two readers are plenty for one command; the default pool is sized for a server.
        return new InProcessMemoryClient(SqliteMemoryStore.Open(dataPath, TimeProvider.System, maxReaders: 2), options)
        {
            Caller = new Caller(tenant ?? Caller.DefaultTenant, Actor),
        };
    }

    public async Task<WrittenMemory> AddAsync(NewMemory memory, DuplicatePolicy policy, CancellationToken ct) =>
        new(await _memories.CreateAsync(Caller, memory, policy, ct));

    public Task<Memory> GetAsync(string id, CancellationToken ct) => _memories.GetAsync(Caller, id, ct);

    public async Task<MemoryListResponse> ListAsync(MemoryFilter filter, int? limit, string? cursor, CancellationToken ct)
    {
        var page = await _memories.ListAsync(Caller, filter, limit, cursor, ct);
        return new MemoryListResponse(page.Items, page.NextCursor);
    }

    public async Task<WrittenMemory> UpdateAsync(string id, MemoryPatch patch, long? expectedVersion, CancellationToken ct) =>
        new(await _memories.UpdateAsync(Caller, id, patch, expectedVersion, ct));

    public Task<long> DeleteAsync(string id, CancellationToken ct) => _memories.DeleteAsync(Caller, id, ct);

    public async Task<BulkDeleteResponse> DeleteManyAsync(MemoryFilter filter, CancellationToken ct)
    {
        var result = await _memories.DeleteManyAsync(Caller, filter, confirm: true, ct);
        return new BulkDeleteResponse(result.Deleted, result.LastSeq);
    }

    public async Task<HistoryResponse> GetHistoryAsync(string id, CancellationToken ct) =>
        new(await _memories.GetHistoryAsync(Caller, id, ct));

    /// <summary>
    /// The store's counts with the index, as the server's /v1/stats reports them. In process the index
    /// is the one built from the store for this command (as for <see cref="SearchAsync"/>).
    /// </summary>
    public async Task<StoreStatistics> GetStatsAsync(CancellationToken ct)
    {
        var engine = Engine();
        await engine.EnsureIndexedAsync().WaitAsync(ct);
        return await engine.GetStatsAsync(Caller, ct);
    }

    private EngramEngine Engine()
    {
        if (_engine is null)
        {
            _engine = new EngramEngine(_store, _options.Limits, _options.Search, _options.Embeddings.CreateProvider());
            _engine.Gate.ReadOnly = _options.ReadOnly;
        }
        return _engine;
    }

    /// <summary>
    /// Builds the indexes from the store for this one search (the server keeps them warm; for large
    /// stores, search through <c>--server</c>).
    /// </summary>
    public async Task<SearchResponse> SearchAsync(SearchRequest request, CancellationToken ct)
    {
        var result = await Engine().Search.SearchAsync(Caller, request, ct);
        return new SearchResponse(result.Results.Select(h => new ScoredMemory(h)).ToList(), Math.Round(result.TookMs, 3));
    }

    public async ValueTask DisposeAsync()
    {
        if (_engine is not null)
        {
            await _engine.DisposeAsync(); // flushes access counts, then closes the store
        }
        await _store.DisposeAsync();
    }
}
