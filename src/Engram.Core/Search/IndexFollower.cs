using Engram.Core.Embeddings;
using Engram.Core.Storage;

namespace Engram.Core.Search;

/// <summary>
/// Keeps a <see cref="MemoryIndex"/> in step with the store by reading the change log after the
/// index's applied sequence number: this process's writes (before a search, for read-your-writes),
/// writes of other processes on the same store (by a background poll), and the full build at start.
/// Vectors come from the store when it holds them for the exact memory version and model; only the
/// rest are embedded, and (with <see cref="PersistVectors"/>) stored for next time. Embedding failures
/// never block indexing: the memory is indexed lexically and its vector stays pending until
/// <see cref="EmbedPendingAsync"/> succeeds.
/// </summary>
public sealed class IndexFollower(IMemoryStore store, MemoryIndex index, IEmbeddingProvider embedder)
{
    private const int ChangeBatch = 2_000;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long _lastError;
    private long _embedded;
    private bool _initialBuildDone;
    private long _caughtUpAt;

    public MemoryIndex Index => index;

    /// <summary>
    /// When set, the initial build (everything up to the store's sequence number at the first catch-up)
    /// indexes lexically only and leaves the vectors to <see cref="EmbedPendingAsync"/>.
    /// </summary>
    public bool DeferEmbeddings { get; init; }

    /// <summary>
    /// Read vectors from the store before embedding and store what was embedded. On for models that
    /// cost real time per text (transformer, remote); the built-in ones embed faster than a row is read.
    /// </summary>
    public bool PersistVectors { get; init; }

    /// <summary>
    /// Set while an <see cref="EmbeddingWorker"/> runs: catch-ups then never call the embedder (a write is
    /// searchable lexically at once and the worker attaches its vector behind), so neither writes nor
    /// searches wait on a slow model.
    /// </summary>
    public bool BackgroundEmbedding { get; set; }

    /// <summary>Where the memories this follower indexes are copied, for search while the store is away (null: none kept).</summary>
    public MemoryCopies? Copies { get; init; }

    /// <summary>
    /// When a catch-up last read the change log to its end: the index reflects the store as of then. With the index
    /// behind, now minus this is how old what search sees is (the lag's age in /health and /v1/stats). Null before the first.
    /// </summary>
    public DateTimeOffset? CaughtUpAt => _caughtUpAt == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _caughtUpAt));

    /// <summary>Raised when a catch-up left vectors pending (the worker wakes on it).</summary>
    public event Action? VectorsPending;

    /// <summary>Documents this follower has embedded (not counting vectors read from the store).</summary>
    public long EmbeddedCount => Interlocked.Read(ref _embedded);

    /// <summary>The last embedding failure's message (for stats), or null.</summary>
    public string? LastEmbeddingError { get; private set; }

    public DateTimeOffset? LastEmbeddingErrorAt => _lastError == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(_lastError);

    /// <summary>The last failure to store embedded vectors (for diagnostics), or null.</summary>
    public string? LastPersistError { get; private set; }

    /// <summary>Applies every memory change after the index's sequence number (moving past other kinds' entries); returns how many it applied.</summary>
    public async Task<int> CatchUpAsync(CancellationToken ct = default, int maxBatches = int.MaxValue)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        var pendingBefore = index.PendingVectors;
        try
        {
            var total = 0;
            var deferUntil = DeferEmbeddings && !_initialBuildDone ? await store.GetLastSeqAsync(ct).ConfigureAwait(false) : 0;
            for (var batch = 0; batch < maxBatches; batch++)
            {
                var page = await store.ReadChangesAsync(index.AppliedSeq, ChangeBatch, ChangeRecord.MemoryEntity, ct).ConfigureAwait(false);
                var changes = page.Changes;
                if (changes.Count > 0)
                {
                    await ApplyAsync(changes, embed: !BackgroundEmbedding && changes[^1].Seq > deferUntil, ct).ConfigureAwait(false);
                }
                index.AppliedSeq = Math.Max(index.AppliedSeq, page.ReadThrough);
                total += changes.Count;
                if (changes.Count < ChangeBatch)
                {
                    Interlocked.Exchange(ref _caughtUpAt, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    _initialBuildDone = true; // read up to the newest entry
                    return total;
                }
            }
            return total;
        }
        finally
        {
            _gate.Release();
            if (index.PendingVectors > pendingBefore)
            {
                VectorsPending?.Invoke();
            }
        }
    }

    /// <summary>
    /// Swaps in <paramref name="replacement"/>'s state (a snapshot or a rebuild) while no catch-up runs,
    /// so no change read for the old state is applied on top of the new one.
    /// </summary>
    public async Task ReplaceIndexAsync(MemoryIndex replacement, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            index.ReplaceWith(replacement);
        }
        finally
        {
            _gate.Release();
        }
        if (index.PendingVectors > 0)
        {
            VectorsPending?.Invoke();
        }
    }

    /// <summary>Catches up only when the index is behind <paramref name="seq"/> (cheap when it is not).</summary>
    public Task CatchUpToAsync(long seq, CancellationToken ct = default) =>
        index.AppliedSeq >= seq ? Task.CompletedTask : CatchUpAsync(ct);

    /// <summary>Tries again to embed memories whose vectors are pending; returns how many got one.</summary>
    public async Task<int> RetryPendingAsync(int max = 256, CancellationToken ct = default) =>
        (await EmbedPendingAsync(max, ct).ConfigureAwait(false)).Attached;

    /// <summary>
    /// Gives up to <paramref name="max"/> pending memories their vectors: stored ones first, the rest
    /// embedded in one batch (and stored). Runs beside catch-ups: a memory changed meanwhile keeps its
    /// new document pending, and the vector goes to the store under the version it was made from.
    /// </summary>
    public async Task<EmbeddingPass> EmbedPendingAsync(int max, CancellationToken ct = default)
    {
        var pending = index.PendingSnapshot(max, out var epoch);
        if (pending.Count == 0)
        {
            return default;
        }
        var memories = await store.GetForIndexAsync(pending.Select(p => p.Id).ToList(), ct).ConfigureAwait(false);
        var docById = pending.ToDictionary(p => p.Id, p => p.Doc, StringComparer.Ordinal);
        var stored = await StoredVectorsAsync(memories, ct).ConfigureAwait(false);
        var attached = 0;
        var missing = new List<TenantMemory>();
        foreach (var m in memories)
        {
            if (stored.TryGetValue(m.Memory.Id, out var vectors))
            {
                attached += index.AttachVector(docById[m.Memory.Id], vectors.First(), epoch) ? 1 : 0;
            }
            else
            {
                missing.Add(m);
            }
        }
        if (missing.Count == 0)
        {
            return new EmbeddingPass(attached, 0, false);
        }
        var embedded = await EmbedAsync(missing, ct).ConfigureAwait(false);
        if (embedded is null)
        {
            return new EmbeddingPass(attached, 0, true);
        }
        for (var i = 0; i < missing.Count; i++)
        {
            attached += index.AttachVector(docById[missing[i].Memory.Id], embedded[i], epoch) ? 1 : 0;
        }
        await PersistAsync(missing, embedded, ct).ConfigureAwait(false);
        return new EmbeddingPass(attached, missing.Count, false);
    }

    private async Task ApplyAsync(IReadOnlyList<ChangeRecord> changes, bool embed, CancellationToken ct)
    {
        // Only the last change of each memory matters within a batch.
        var last = new Dictionary<string, ChangeRecord>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            if (change.Entity == ChangeRecord.MemoryEntity)
            {
                last[change.EntityId] = change;
            }
        }
        var upserts = last.Values.Where(c => c.Op == ChangeRecord.Upsert).Select(c => c.EntityId).ToList();
        foreach (var deleted in last.Values.Where(c => c.Op == ChangeRecord.Delete))
        {
            index.Remove(deleted.EntityId);
            Copies?.Remove(deleted.EntityId);
        }
        if (upserts.Count == 0)
        {
            return;
        }

        var live = await store.GetForIndexAsync(upserts, ct).ConfigureAwait(false);
        var found = new HashSet<string>(live.Select(m => m.Memory.Id), StringComparer.Ordinal);
        foreach (var gone in upserts.Where(id => !found.Contains(id)))
        {
            index.Remove(gone); // changed and then deleted or expired since
            Copies?.Remove(gone);
        }

        var stored = await StoredVectorsAsync(live, ct).ConfigureAwait(false);
        var missing = embed ? live.Where(m => !stored.ContainsKey(m.Memory.Id)).ToList() : [];
        var embedded = missing.Count == 0 ? null : await EmbedAsync(missing, ct).ConfigureAwait(false);
        var fresh = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (embedded is not null)
        {
            for (var i = 0; i < missing.Count; i++)
            {
                fresh[missing[i].Memory.Id] = embedded[i];
            }
        }
        foreach (var m in live)
        {
            var vector = stored.TryGetValue(m.Memory.Id, out var vectors) ? vectors.First() : fresh.GetValueOrDefault(m.Memory.Id);
            index.Upsert(m.Tenant, m.Memory, vector);
            Copies?.Put(m.Tenant, m.Memory);
        }
        if (embedded is not null)
        {
            await PersistAsync(missing, embedded, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The store's vectors of this model for exactly these memory versions, by memory id.</summary>
    private async Task<Dictionary<string, MemoryVectors>> StoredVectorsAsync(IReadOnlyList<TenantMemory> memories, CancellationToken ct)
    {
        var byId = new Dictionary<string, MemoryVectors>(StringComparer.Ordinal);
        if (!PersistVectors || memories.Count == 0)
        {
            return byId;
        }
        var keys = memories.Select(m => new VectorKey(m.Tenant, m.Memory.Id, m.Memory.Version)).ToList();
        foreach (var vectors in await store.GetVectorsAsync(keys, embedder.ModelId, ct).ConfigureAwait(false))
        {
            byId[vectors.Key.MemoryId] = vectors;
        }
        return byId;
    }

    /// <summary>Embeds the memories' content as documents; null (and the error recorded) when the embedder fails.</summary>
    private async Task<float[][]?> EmbedAsync(IReadOnlyList<TenantMemory> memories, CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            var vectors = await embedder.EmbedBatchAsync(memories.Select(m => m.Memory.Content).ToList(), ct).ConfigureAwait(false);
            Interlocked.Add(ref _embedded, vectors.Length);
            Telemetry.EngramInstruments.EmbeddingDone(Telemetry.EngramInstruments.Documents, started, failed: false);
            return vectors;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Telemetry.EngramInstruments.EmbeddingDone(Telemetry.EngramInstruments.Documents, started, failed: true);
            RecordError(ex); // indexed lexically now; the vectors are retried later
            return null;
        }
    }

    private async Task PersistAsync(IReadOnlyList<TenantMemory> memories, float[][] vectors, CancellationToken ct)
    {
        if (!PersistVectors)
        {
            return;
        }
        var rows = new List<MemoryVectors>(memories.Count);
        for (var i = 0; i < memories.Count; i++)
        {
            var m = memories[i];
            if (vectors[i].Length > 0)
            {
                rows.Add(MemoryVectors.Single(new VectorKey(m.Tenant, m.Memory.Id, m.Memory.Version), embedder.ModelId, vectors[i]));
            }
        }
        try
        {
            await store.PutVectorsAsync(rows, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is StoreException or ObjectDisposedException)
        {
            LastPersistError = ex.Message; // the index has the vectors; a later rebuild embeds them again
        }
    }

    private void RecordError(Exception ex)
    {
        LastEmbeddingError = ex.Message;
        Interlocked.Exchange(ref _lastError, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }
}

/// <summary>What one pass over pending vectors did: attached to the index, embedded (the rest came from the store), and whether the embedder failed.</summary>
public readonly record struct EmbeddingPass(int Attached, int Embedded, bool Failed);
