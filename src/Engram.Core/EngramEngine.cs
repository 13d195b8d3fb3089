using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.Indexing.Vector;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Core;

/// <summary>
/// Everything one Engram process runs, composed in one place and without a web host: the store, the
/// memory facade, the derived indexes and their follower, and search. The server registers these
/// parts; the CLI's in-process mode and the benchmarks use the engine directly.
/// </summary>
public sealed class EngramEngine : IAsyncDisposable
{
    private readonly Lazy<Task> _initialBuild;

    public EngramEngine(IMemoryStore store, MemoryLimits limits, SearchOptions search, IEmbeddingProvider embedder, TimeProvider? clock = null)
    {
        Clock = clock ?? TimeProvider.System;
        Store = store;
        Embedder = embedder;
        Watermark = new WriteWatermark();
        Memories = new MemoryService(store, limits, Clock, Watermark);
        Index = new MemoryIndex(dimensions => new HnswIndex(dimensions), embedder.ModelId,
            new Indexing.Text.Bm25Index(new Indexing.Text.TextAnalyzer(stem: search.Stemming), search.Bm25K1, search.Bm25B));
        // A remote embedder would hold the first search back for the whole corpus: index lexically
        // first and let the maintenance loop fill the vectors in the background.
        Follower = new IndexFollower(store, Index, embedder) { DeferEmbeddings = embedder is not (BuiltinEmbeddingProvider or HashEmbeddingProvider) };
        Access = new AccessTracker(Clock);
        Search = new SearchService(store, Follower, embedder, Watermark, Access, search, Clock);
        _initialBuild = new Lazy<Task>(() => Follower.CatchUpAsync());
        Search.WaitFor(EnsureIndexedAsync);
    }

    /// <summary>Opens the SQLite store in <paramref name="dataPath"/> with the built-in embedder.</summary>
    public static EngramEngine OpenSqlite(string dataPath, MemoryLimits? limits = null, SearchOptions? search = null, IEmbeddingProvider? embedder = null, TimeProvider? clock = null) =>
        new(SqliteMemoryStore.Open(dataPath, clock), limits ?? new MemoryLimits(), search ?? new SearchOptions(), embedder ?? BuiltinEmbeddingProvider.Default, clock);

    public TimeProvider Clock { get; }

    public IMemoryStore Store { get; }

    public IEmbeddingProvider Embedder { get; }

    public WriteWatermark Watermark { get; }

    public MemoryService Memories { get; }

    public MemoryIndex Index { get; }

    public IndexFollower Follower { get; }

    public AccessTracker Access { get; }

    public SearchService Search { get; }

    public IndexStatistics IndexStatistics() => new(
        Index.AppliedSeq, Index.Count, Index.Vectors?.Count ?? 0, Index.PendingVectors, Embedder.ModelId, Follower.LastEmbeddingError);

    /// <summary>Stats of the store with the index's position added.</summary>
    public async Task<StoreStatistics> GetStatsAsync(Common.Caller caller, CancellationToken ct = default) =>
        await Memories.GetStatsAsync(caller, ct).ConfigureAwait(false) with { Index = IndexStatistics() };

    /// <summary>Builds the indexes from the store's change log (once; later calls wait for the same build).</summary>
    public Task EnsureIndexedAsync() => _initialBuild.Value;

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Access.FlushAsync(Store).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is StoreException or ObjectDisposedException)
        {
            // Access counts are bookkeeping; losing the last few on a failing or closed store is acceptable.
        }
        await Store.DisposeAsync().ConfigureAwait(false);
        (Embedder as IDisposable)?.Dispose();
    }
}
