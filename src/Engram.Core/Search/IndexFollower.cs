using Engram.Core.Embeddings;
using Engram.Core.Storage;

namespace Engram.Core.Search;

/// <summary>
/// Keeps a <see cref="MemoryIndex"/> in step with the store by reading the change log after the
/// index's applied sequence number: this process's writes (before a search, for read-your-writes),
/// writes of other processes on the same store (by a background poll), and the full build at start.
/// Embedding failures never block indexing: the memory is indexed lexically and its vector stays
/// pending until <see cref="RetryPendingAsync"/> succeeds.
/// </summary>
public sealed class IndexFollower(IMemoryStore store, MemoryIndex index, IEmbeddingProvider embedder)
{
    private const int ChangeBatch = 2_000;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long _lastError;
    private bool _initialBuildDone;

    public MemoryIndex Index => index;

    /// <summary>
    /// When set, the initial build (everything up to the store's sequence number at the first catch-up)
    /// indexes lexically only and leaves the vectors to <see cref="RetryPendingAsync"/>.
    /// </summary>
    public bool DeferEmbeddings { get; init; }

    /// <summary>The last embedding failure's message (for stats), or null.</summary>
    public string? LastEmbeddingError { get; private set; }

    public DateTimeOffset? LastEmbeddingErrorAt => _lastError == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(_lastError);

    /// <summary>Applies every memory change after the index's sequence number (moving past other kinds' entries); returns how many it applied.</summary>
    public async Task<int> CatchUpAsync(CancellationToken ct = default, int maxBatches = int.MaxValue)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
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
                    await ApplyAsync(changes, embed: changes[^1].Seq > deferUntil, ct).ConfigureAwait(false);
                }
                index.AppliedSeq = Math.Max(index.AppliedSeq, page.ReadThrough);
                total += changes.Count;
                if (changes.Count < ChangeBatch)
                {
                    _initialBuildDone = true; // read up to the newest entry
                    return total;
                }
            }
            return total;
        }
        finally
        {
            _gate.Release();
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
    }

    /// <summary>Catches up only when the index is behind <paramref name="seq"/> (cheap when it is not).</summary>
    public Task CatchUpToAsync(long seq, CancellationToken ct = default) =>
        index.AppliedSeq >= seq ? Task.CompletedTask : CatchUpAsync(ct);

    /// <summary>Tries again to embed memories whose vectors are pending; returns how many got one.</summary>
    public async Task<int> RetryPendingAsync(int max = 256, CancellationToken ct = default)
    {
        var pending = index.PendingSnapshot(max);
        if (pending.Count == 0)
        {
            return 0;
        }
        var memories = await store.GetForIndexAsync(pending.Select(p => p.Id).ToList(), ct).ConfigureAwait(false);
        var contentById = memories.ToDictionary(m => m.Memory.Id, m => m.Memory.Content, StringComparer.Ordinal);
        var work = pending.Where(p => contentById.ContainsKey(p.Id)).ToList();
        if (work.Count == 0)
        {
            return 0;
        }
        float[][] vectors;
        try
        {
            vectors = await embedder.EmbedBatchAsync(work.Select(p => contentById[p.Id]).ToList(), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            RecordError(ex);
            return 0;
        }
        var attached = 0;
        for (var i = 0; i < work.Count; i++)
        {
            attached += index.AttachVector(work[i].Doc, vectors[i]) ? 1 : 0;
        }
        return attached;
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
        }

        float[][]? vectors = null;
        try
        {
            vectors = !embed ? null : await embedder.EmbedBatchAsync(live.Select(m => m.Memory.Content).ToList(), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            RecordError(ex); // indexed lexically now; the vectors are retried later
        }
        for (var i = 0; i < live.Count; i++)
        {
            index.Upsert(live[i].Tenant, live[i].Memory, vectors?[i]);
        }
    }

    private void RecordError(Exception ex)
    {
        LastEmbeddingError = ex.Message;
        Interlocked.Exchange(ref _lastError, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }
}
