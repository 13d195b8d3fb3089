using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.Indexing.Vector;
using Engram.Core.KeyValue;
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
    private readonly Func<Task<IndexLoadReport>> _initialBuild;
    private readonly Lock _initialBuildLock = new();
    private Task<IndexLoadReport>? _initialBuildTask;

    private readonly SearchOptions _searchOptions;
    private readonly Func<int, IVectorIndex> _createVectorIndex;
    private readonly SemaphoreSlim _snapshotGate = new(1, 1);
    // What the last snapshot holds: the index's sequence number and vector moves (see MemoryIndex.VectorMoves).
    private (long Seq, long VectorMoves) _snapshotState = (-1, -1);

    /// <param name="snapshotPath">Where the index snapshot lives; null for none (tests, one-off tools).</param>
    public EngramEngine(IMemoryStore store, MemoryLimits limits, SearchOptions search, IEmbeddingProvider embedder, TimeProvider? clock = null, string? snapshotPath = null,
        KvOptions? keyValue = null)
    {
        Limits = limits;
        _searchOptions = search;
        SnapshotPath = snapshotPath;
        var hnsw = HnswOptions.Default with
        {
            M = search.HnswM,
            EfConstruction = search.HnswEfConstruction,
            EfSearch = search.HnswEfSearch,
            Quantization = search.VectorQuantization,
        };
        _createVectorIndex = dimensions => new HnswIndex(dimensions, hnsw);
        Clock = clock ?? TimeProvider.System;
        Store = store;
        Probe = new StoreProbe(store);
        Embedder = embedder;
        Watermark = new WriteWatermark();
        Gate = new Operations.WriteGate();
        Memories = new MemoryService(store, limits, Clock, Watermark, Gate);
        keyValue ??= new KvOptions();
        KeyValue = new KvService(store as IKeyValueStore ?? throw new ArgumentException($"the {store.Kind} store does not hold key-value state", nameof(store)),
            keyValue, Clock, Gate);
        if (store is Storage.Sqlite.SqliteMemoryStore sqlite)
        {
            sqlite.KvCacheBytesLimit = keyValue.CacheMB * 1024L * 1024;
        }
        Index = new MemoryIndex(_createVectorIndex, embedder.ModelId,
            new Indexing.Text.Bm25Index(new Indexing.Text.TextAnalyzer(stem: search.Stemming), search.Bm25K1, search.Bm25B) { TypoWeight = search.TypoWeight });
        // A database can be away while Engram runs (a SQLite store is a local file): keep copies to search from meanwhile.
        Copies = store.Kind == "postgres" && search.OutageCacheMB > 0 ? new MemoryCopies(search.OutageCacheMB * 1024L * 1024) : null;
        // A remote embedder would hold the first search back for the whole corpus: index lexically
        // first and let the maintenance loop fill the vectors in the background.
        Follower = NewFollower(Index, deferEmbeddings: embedder is not LocalEmbeddingProvider);
        Embedding = new EmbeddingWorker(Follower);
        Access = new AccessTracker(Clock);
        // Agents repeat queries; with a transformer each embedding costs milliseconds.
        QueryCache = search.QueryCacheSize > 0 ? new QueryVectorCache(search.QueryCacheSize) : null;
        Search = new SearchService(store, Follower, QueryCache is null ? embedder : new CachedQueryEmbedder(embedder, QueryCache), Watermark, Access, search, Clock, limits)
        {
            Copies = Copies,
        };
        Graph = store is Graph.IGraphStore graphStore
            ? new Graph.GraphService(graphStore, Clock, Gate)
            : throw new ArgumentException($"the {store.Kind} store has no knowledge graph", nameof(store));
        _initialBuild = LoadOrBuildAsync;
        Search.WaitFor(EnsureIndexedAsync);
    }

    /// <summary>Opens the SQLite store in <paramref name="dataPath"/> (built-in embedder unless given; snapshots next to it when asked).</summary>
    public static EngramEngine OpenSqlite(string dataPath, MemoryLimits? limits = null, SearchOptions? search = null, IEmbeddingProvider? embedder = null,
        TimeProvider? clock = null, bool snapshots = false, KvOptions? keyValue = null) =>
        new(SqliteMemoryStore.Open(dataPath, clock), limits ?? new MemoryLimits(), search ?? new SearchOptions(), embedder ?? BuiltinEmbeddingProvider.Default,
            clock, snapshots ? Path.Combine(Path.GetFullPath(dataPath), IndexSnapshot.FileName) : null, keyValue);

    /// <summary>
    /// Like <see cref="OpenSqlite"/>, with the backend picked from <paramref name="location"/>: a postgres:// URL or a
    /// data folder (<see cref="StoreFactory"/>). Index snapshots live in a data folder only.
    /// </summary>
    public static EngramEngine Open(string location, MemoryLimits? limits = null, SearchOptions? search = null, IEmbeddingProvider? embedder = null,
        TimeProvider? clock = null, bool snapshots = false, KvOptions? keyValue = null) =>
        StoreFactory.IsPostgres(location)
            ? new(StoreFactory.Open(location, clock), limits ?? new MemoryLimits(), search ?? new SearchOptions(), embedder ?? BuiltinEmbeddingProvider.Default,
                clock, null, keyValue)
            : OpenSqlite(location, limits, search, embedder, clock, snapshots, keyValue);

    public string? SnapshotPath { get; }

    /// <summary>The limits every write and filter is checked against (content, fields, tags, lists).</summary>
    public MemoryLimits Limits { get; }

    public TimeProvider Clock { get; }

    public IMemoryStore Store { get; }

    /// <summary>Whether the store answers (and in how long), and the last change-log position it gave.</summary>
    public StoreProbe Probe { get; }

    /// <summary>
    /// How far the indexes are behind the store: entries (the newest change-log position known, from the store or this
    /// process's own writes, minus the index's) and for how long (since a catch-up last read the log to its end; 0 when
    /// not behind). Without a store answer the last known position stands in, so the lag shown is a lower bound.
    /// </summary>
    public IndexLag IndexLag()
    {
        var newest = Math.Max(Probe.LastKnownSeq ?? 0, Watermark.Last);
        var entries = Math.Max(0, newest - Index.AppliedSeq);
        var age = entries == 0 || Follower.CaughtUpAt is not { } caughtUp ? 0 : Math.Max(0, (DateTimeOffset.UtcNow - caughtUp).TotalSeconds);
        return new IndexLag(entries, Math.Round(age, 3), Follower.CaughtUpAt);
    }

    public IEmbeddingProvider Embedder { get; }

    public WriteWatermark Watermark { get; }

    /// <summary>
    /// Commit notifications from the store (other instances' writes and this one's), when it has them
    /// (<see cref="IChangeNotifications"/>): the server's index maintenance listens and wakes on it.
    /// </summary>
    public ChangeSignal Changes { get; } = new();

    /// <summary>The one gate every write of memories, key-value state and the graph passes (read-only mode, memory budget).</summary>
    public Operations.WriteGate Gate { get; }

    public MemoryService Memories { get; }

    /// <summary>Key-value state (agent scratch state with TTLs) in the same store.</summary>
    public KvService KeyValue { get; }

    public MemoryIndex Index { get; }

    public IndexFollower Follower { get; }

    /// <summary>Copies of recently indexed memories that search answers from while the database is away; null with SQLite or when turned off.</summary>
    public MemoryCopies? Copies { get; }

    /// <summary>Fills pending vectors in behind writes once <see cref="RunEmbeddingWorkerAsync"/> runs (the server's maintenance starts it).</summary>
    public EmbeddingWorker Embedding { get; }

    /// <summary>The search path's cache of query vectors; null when <see cref="SearchOptions.QueryCacheSize"/> is 0.</summary>
    public QueryVectorCache? QueryCache { get; }

    /// <summary>
    /// Vectors persist in the store (read before embedding, written after) for models that cost real
    /// time per text: everything but the in-process word-vector models, which embed faster than a row is read.
    /// </summary>
    public bool PersistsVectors => Embedder is not LocalEmbeddingProvider;

    public AccessTracker Access { get; }

    public SearchService Search { get; }

    /// <summary>The knowledge graph (entities, observations, relations) over the same store.</summary>
    public Graph.GraphService Graph { get; }

    public IndexStatistics IndexStatistics() => new(
        Index.AppliedSeq, Index.Count, Index.VectorCount, Index.PendingVectors, Index.StagedVectors, Embedder.ModelId, Follower.LastEmbeddingError,
        Follower.EmbeddedCount, Math.Round(Embedding.EmbeddingRate, 1));

    /// <summary>The commit listener's state; null for a store without notifications (its followers poll).</summary>
    public ChangeFeedStatistics? ChangeFeedStatistics() => Store is IChangeNotifications
        ? new(Changes.Listening, Changes.Down?.Since, Changes.Down?.Reason, Changes.Notifications, Changes.Connects)
        : null;

    /// <summary>
    /// Runs the background embedding worker until <paramref name="ct"/> is cancelled. With a model that
    /// is not in-process and instant (transformer, remote), catch-ups then stop embedding: writes are
    /// searchable lexically at once and their vectors follow within a batch. With the built-in models
    /// catch-ups keep embedding inline (microseconds) and the worker only retries failures.
    /// </summary>
    public Task RunEmbeddingWorkerAsync(CancellationToken ct) => Embedding.RunAsync(background: PersistsVectors, ct);

    /// <summary>
    /// Drops stored vectors of other models (after a model change) in chunks; returns how many went. Only
    /// when this model persists its own: the built-in models store nothing, so falling back to GloVe for a
    /// while does not throw away hours of transformer embeddings.
    /// </summary>
    public Task<int> PruneStoredVectorsAsync(int max = 20_000, CancellationToken ct = default) =>
        PersistsVectors ? Store.PruneVectorsAsync(Embedder.ModelId, max, ct) : Task.FromResult(0);

    private IndexFollower NewFollower(MemoryIndex index, bool deferEmbeddings) =>
        new(Store, index, Embedder) { DeferEmbeddings = deferEmbeddings, PersistVectors = PersistsVectors, Copies = Copies };

    /// <summary>
    /// Stats of the caller's tenant (and scope); for admins with the store's size and the index's
    /// position added, which count every tenant (<see cref="MemoryService.GetStatsAsync"/> checks the role).
    /// </summary>
    public Task<StoreStatistics> GetStatsAsync(Common.Caller caller, CancellationToken ct = default) =>
        GetStatsAsync(caller, MemoryFilter.None, ct);

    /// <summary>As <see cref="GetStatsAsync(Common.Caller, CancellationToken)"/>, the counts narrowed to <paramref name="filter"/>.</summary>
    /// <remarks>
    /// With the store away this still answers: the counts come from the indexes (<see cref="StoreDescription.CountsFrom"/>
    /// says so; memories not yet indexed are missing), and <see cref="StoreDescription.Reachable"/> is false.
    /// </remarks>
    public async Task<StoreStatistics> GetStatsAsync(Common.Caller caller, MemoryFilter filter, CancellationToken ct = default)
    {
        StoreStatistics stats;
        string? countsFrom = null;
        try
        {
            stats = await Memories.GetStatsAsync(caller, filter, ct).ConfigureAwait(false);
            if (stats.LastSeq is { } seq)
            {
                Probe.Saw(seq);
            }
        }
        catch (StoreException ex) when (StoreFailure.IsUnavailable(ex) && filter.Metadata is not { Count: > 0 } && EnsureIndexedAsync().IsCompletedSuccessfully)
        {
            var guard = Security.ScopeGuard.Enter(caller, Security.Role.Read, "read statistics");
            var confined = guard.Confine(filter);
            var now = Clock.GetUtcNow();
            var counts = Index.Read(index => index.Docs.Count(new DocFilter(index.Docs, caller.Tenant, confined, now, null)));
            stats = caller.Role >= Security.Role.Admin ? new StoreStatistics(counts, null, Probe.LastKnownSeq) : new StoreStatistics(counts, null, null);
            countsFrom = "index";
        }
        var admin = caller.Role >= Security.Role.Admin;
        var probe = countsFrom is null ? await Probe.RunAsync(ct).ConfigureAwait(false) : Probe.Last ?? await Probe.RunAsync(ct).ConfigureAwait(false);
        if (countsFrom is not null && probe.Reachable)
        {
            probe = await Probe.RunAsync(ct).ConfigureAwait(false); // the counts failed: ask again rather than show an old "reachable"
        }
        stats = stats with
        {
            Store = new StoreDescription(Store.Kind)
            {
                Reachable = probe.Reachable,
                CountsFrom = countsFrom,
                // Where the store is and how fast it answers are the operator's business (as the store's size is).
                Location = admin ? Probe.Location : null,
                RoundTripMs = admin ? probe.RoundTripMs : null,
                Error = admin ? probe.Error : null,
            },
        };
        return admin ? stats with { Index = IndexStatistics() with { Lag = IndexLag() }, ChangeFeed = ChangeFeedStatistics() } : stats;
    }

    /// <summary>
    /// Loads the snapshot or builds the indexes from the change log (once; later calls wait for the same work). A build
    /// that failed because the store was away is started again by the next call, so the server does not stay without
    /// indexes after a database blip at start; any other failure stays (it needs a look, and a reindex).
    /// </summary>
    public Task<IndexLoadReport> EnsureIndexedAsync()
    {
        lock (_initialBuildLock)
        {
            if (_initialBuildTask is null || (_initialBuildTask.IsFaulted && StoreFailure.IsUnavailable(_initialBuildTask.Exception!.GetBaseException())))
            {
                _initialBuildTask = _initialBuild();
            }
            return _initialBuildTask;
        }
    }

    /// <summary>
    /// Drops the indexes and rebuilds them from the store, then builds the vector graph, then writes a
    /// fresh snapshot when snapshots are on. <paramref name="progress"/> gets (phase, done, total): phase
    /// "changes" while the change log is replayed, "vectors" while the graph is built.
    /// </summary>
    public async Task<IndexLoadReport> RebuildAsync(IProgress<(string Phase, long Done, long Total)>? progress = null, CancellationToken ct = default)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var fresh = new MemoryIndex(_createVectorIndex, Embedder.ModelId, NewLexical());
        var follower = NewFollower(fresh, deferEmbeddings: false);
        var last = await Store.GetLastSeqAsync(ct).ConfigureAwait(false);
        while (await follower.CatchUpAsync(ct, maxBatches: 1).ConfigureAwait(false) > 0)
        {
            progress?.Report(("changes", fresh.AppliedSeq, Math.Max(last, fresh.AppliedSeq)));
        }
        var staged = fresh.StagedVectors;
        for (var drained = 0; fresh.StagedVectors > 0;)
        {
            ct.ThrowIfCancellationRequested();
            drained += fresh.DrainStaged(1024);
            progress?.Report(("vectors", drained, staged));
        }
        await Follower.ReplaceIndexAsync(fresh, ct).ConfigureAwait(false);
        await Follower.CatchUpAsync(ct).ConfigureAwait(false);
        await SaveSnapshotAsync(force: true, ct).ConfigureAwait(false);
        return new IndexLoadReport("rebuilt", "requested", Index.Count, Index.AppliedSeq, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>Writes the index snapshot when snapshots are on and the index moved since the last one; returns whether it wrote.</summary>
    public async Task<bool> SaveSnapshotAsync(bool force = false, CancellationToken ct = default)
    {
        if (SnapshotPath is null)
        {
            return false;
        }
        await _snapshotGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var state = (Index.AppliedSeq, Index.VectorMoves);
            if (!force && state == _snapshotState)
            {
                return false;
            }
            await Task.Run(() => IndexSnapshot.Save(Index, SnapshotPath, Store.StoreId, _searchOptions), ct).ConfigureAwait(false);
            _snapshotState = state;
            return true;
        }
        finally
        {
            _snapshotGate.Release();
        }
    }

    private Indexing.Text.Bm25Index NewLexical() =>
        new(new Indexing.Text.TextAnalyzer(stem: _searchOptions.Stemming), _searchOptions.Bm25K1, _searchOptions.Bm25B) { TypoWeight = _searchOptions.TypoWeight };

    private async Task<IndexLoadReport> LoadOrBuildAsync()
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var source = "rebuilt";
        var reason = "snapshots off";
        if (SnapshotPath is not null)
        {
            var loaded = await Task.Run(() => IndexSnapshot.TryLoad(SnapshotPath, Store.StoreId, Embedder.ModelId, _searchOptions, _createVectorIndex, out reason)).ConfigureAwait(false);
            if (loaded is not null)
            {
                var last = await Store.GetLastSeqAsync().ConfigureAwait(false);
                if (loaded.AppliedSeq > last)
                {
                    reason = $"snapshot is at seq {loaded.AppliedSeq}, ahead of the store's {last} (an older copy of the database?)";
                }
                else
                {
                    await Follower.ReplaceIndexAsync(loaded).ConfigureAwait(false);
                    _snapshotState = (loaded.AppliedSeq, Index.VectorMoves);
                    source = "snapshot";
                }
            }
        }
        await Follower.CatchUpAsync().ConfigureAwait(false);
        if (source == "rebuilt" && SnapshotPath is not null)
        {
            await SaveSnapshotAsync(force: true).ConfigureAwait(false);
        }
        return new IndexLoadReport(source, reason, Index.Count, Index.AppliedSeq, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

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

/// <summary>How the indexes came to be at start: loaded from a snapshot (then caught up) or rebuilt, and why.</summary>
public sealed record IndexLoadReport(string Source, string Reason, int Memories, long AppliedSeq, double Milliseconds);
