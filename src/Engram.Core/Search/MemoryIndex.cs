using Engram.Core.Common;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;
using Engram.Core.Indexing.Vector;
using Engram.Core.Memories;

namespace Engram.Core.Search;

/// <summary>
/// The derived, in-memory indexes of one process: the doc table, BM25 and the vector index, kept in
/// step under one reader-writer lock so a search never sees a memory in one index and not another.
/// Fed only by <see cref="IndexFollower"/> from the store's change log; can be dropped and rebuilt.
/// </summary>
public sealed partial class MemoryIndex(Func<int, IVectorIndex> createVectorIndex, string embeddingModel, Bm25Index? lexical = null)
{
    private readonly ReaderWriterLockSlim _gate = new(LockRecursionPolicy.NoRecursion);
    private readonly HashSet<int> _pendingVectors = [];

    // Vectors embedded but not yet in the graph. An HNSW insert costs ~0.3-1 ms while embedding and
    // BM25 cost microseconds, so the follower stages vectors here and a background drain inserts them
    // (an LSM-style buffer): the change log is applied at BM25 speed, and searches scan this buffer
    // exactly next to the graph, so read-your-writes holds for the semantic signal too.
    private readonly Dictionary<int, float[]> _staged = [];
    /// <summary>Released when a vector is staged, so the drain sleeps until there is work (<see cref="WaitForStagedAsync"/>).</summary>
    private readonly SemaphoreSlim _stagedSignal = new(0, 1);
    private long _appliedSeq;
    private long _vectorMoves;

    public DocTable Docs { get; private set; } = new();

    public Bm25Index Lexical { get; private set; } = lexical ?? new Bm25Index();

    /// <summary>Null until the first vector arrives (a remote model's length is known only then).</summary>
    public IVectorIndex? Vectors { get; private set; }

    /// <summary>The model every vector in <see cref="Vectors"/> came from.</summary>
    public string EmbeddingModel { get; } = embeddingModel;

    /// <summary>
    /// Counts vectors attached to pending memories and moved into the graph. Neither moves <see cref="AppliedSeq"/>,
    /// yet both change what a snapshot holds: after a large build the graph fills in for minutes with no new write.
    /// </summary>
    public long VectorMoves => Interlocked.Read(ref _vectorMoves);

    /// <summary>Every change-log entry up to this sequence number is reflected here.</summary>
    public long AppliedSeq
    {
        get => Interlocked.Read(ref _appliedSeq);
        internal set => Interlocked.Exchange(ref _appliedSeq, value);
    }

    public int Count
    {
        get
        {
            _gate.EnterReadLock();
            try
            {
                return Docs.LiveCount;
            }
            finally
            {
                _gate.ExitReadLock();
            }
        }
    }

    /// <summary>Vectors waiting to be inserted into the graph (searched exactly meanwhile).</summary>
    public int StagedVectors
    {
        get
        {
            _gate.EnterReadLock();
            try
            {
                return _staged.Count;
            }
            finally
            {
                _gate.ExitReadLock();
            }
        }
    }

    /// <summary>Live vectors: in the graph or staged.</summary>
    public int VectorCount => Read(index => (index.Vectors?.Count ?? 0) + index._staged.Count);

    public int PendingVectors
    {
        get
        {
            _gate.EnterReadLock();
            try
            {
                return _pendingVectors.Count;
            }
            finally
            {
                _gate.ExitReadLock();
            }
        }
    }

    /// <summary>Indexes the current version of a memory; a null vector leaves it pending (lexical only until attached).</summary>
    public void Upsert(string tenant, Memory memory, float[]? vector)
    {
        _gate.EnterWriteLock();
        try
        {
            RetireLocked(memory.Id);
            var doc = Docs.Add(tenant, memory);
            Lexical.Add(doc, memory.Content);
            if (vector is not null)
            {
                _staged[doc] = vector;
                _stagedSignal.WakeOnce();
            }
            else
            {
                _pendingVectors.Add(doc);
            }
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    public void Remove(string memoryId)
    {
        _gate.EnterWriteLock();
        try
        {
            RetireLocked(memoryId);
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    /// <summary>The memory ids still waiting for a vector (at most <paramref name="max"/>).</summary>
    /// <remarks><paramref name="epoch"/> names the document numbering; hand it back to <see cref="AttachVector"/>.</remarks>
    public List<(string Id, int Doc)> PendingSnapshot(int max, out long epoch)
    {
        _gate.EnterReadLock();
        try
        {
            epoch = _docEpoch;
            return _pendingVectors.Take(max).Select(doc => (Docs[doc].Id, doc)).ToList();
        }
        finally
        {
            _gate.ExitReadLock();
        }
    }

    /// <summary>
    /// Attaches a vector computed later; ignored when the memory changed or went away meanwhile, or when the documents
    /// were renumbered since <paramref name="epoch"/> (<see cref="PendingSnapshot"/>; the memory stays pending).
    /// </summary>
    public bool AttachVector(int doc, float[] vector, long epoch)
    {
        _gate.EnterWriteLock();
        try
        {
            if (epoch != _docEpoch || !_pendingVectors.Remove(doc) || !Docs[doc].Live)
            {
                return false;
            }
            _staged[doc] = vector;
            _stagedSignal.WakeOnce();
            Interlocked.Increment(ref _vectorMoves);
            return true;
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    /// <summary>
    /// Waits until a vector is staged after the last wait returned, or <paramref name="atMost"/> passed. The drain waits here
    /// instead of polling: a 50 ms poll woke a pool thread 20 times a second on an idle server, each of which then spun.
    /// </summary>
    public Task<bool> WaitForStagedAsync(TimeSpan atMost, CancellationToken ct) => _stagedSignal.WaitAsync(atMost, ct);

    /// <summary>
    /// Moves up to <paramref name="max"/> staged vectors into the graph; returns how many. The graph
    /// insert runs outside this index's lock (the graph synchronises itself), so searches go on; a
    /// memory retired meanwhile is taken out of the graph again.
    /// </summary>
    public int DrainStaged(int max)
    {
        lock (_drain) // the batch's document numbers must stay valid: no renumbering meanwhile
        {
            return DrainStagedLocked(max);
        }
    }

    private int DrainStagedLocked(int max)
    {
        List<KeyValuePair<int, float[]>> batch;
        _gate.EnterWriteLock();
        try
        {
            if (_staged.Count == 0)
            {
                return 0;
            }
            batch = _staged.Take(max).ToList();
            Vectors ??= createVectorIndex(batch[0].Value.Length);
        }
        finally
        {
            _gate.ExitWriteLock();
        }

        var graph = Vectors;
        var moved = 0;
        foreach (var (doc, vector) in batch)
        {
            var fits = vector.Length == graph.Dimensions;
            if (fits)
            {
                try
                {
                    graph.Add(doc, vector);
                }
                catch (InvalidOperationException)
                {
                    // Already in the graph: a snapshot taken mid-drain holds it in both places.
                }
            }
            _gate.EnterWriteLock();
            try
            {
                if (!_staged.Remove(doc))
                {
                    if (fits)
                    {
                        graph.Remove(doc); // retired while it was being inserted
                    }
                }
                else if (!fits)
                {
                    _pendingVectors.Add(doc); // the provider changed its vector length: keep it findable lexically
                }
                else
                {
                    moved++;
                    Interlocked.Increment(ref _vectorMoves);
                }
            }
            finally
            {
                _gate.ExitWriteLock();
            }
        }
        return moved;
    }

    /// <summary>
    /// The nearest live documents <paramref name="filter"/> allows, from the graph and the staged
    /// buffer together (call inside <see cref="Read{T}"/>). Returns how many were written, best first.
    /// </summary>
    public int SearchVectors<TFilter>(float[] query, Span<ScoredDoc> results, TFilter filter) where TFilter : IDocFilter
    {
        var top = new TopK(results);
        if (Vectors is { } graph && graph.Dimensions == query.Length)
        {
            var found = new ScoredDoc[results.Length];
            var count = graph.Search(query, found, filter);
            for (var i = 0; i < count; i++)
            {
                // A drained vector can sit in both places for a moment: the staged copy is the same vector.
                if (!_staged.ContainsKey(found[i].Doc))
                {
                    top.Add(found[i].Doc, found[i].Score);
                }
            }
        }
        foreach (var (doc, vector) in _staged)
        {
            if (vector.Length == query.Length && filter.Allows(doc))
            {
                top.Add(doc, System.Numerics.Tensors.TensorPrimitives.Dot(query, vector));
            }
        }
        return top.Finish();
    }

    /// <summary>The cosine of a document's vector with the query (0 without one); call inside <see cref="Read{T}"/>.</summary>
    public float Similarity(int doc, float[] query)
    {
        if (_staged.TryGetValue(doc, out var staged))
        {
            return staged.Length == query.Length ? System.Numerics.Tensors.TensorPrimitives.Dot(query, staged) : 0f;
        }
        return Vectors is { } graph && graph.Dimensions == query.Length ? graph.Similarity(doc, query) : 0f;
    }

    /// <summary>Runs <paramref name="read"/> with the indexes held still (many readers at once).</summary>
    public T Read<T>(Func<MemoryIndex, T> read)
    {
        _gate.EnterReadLock();
        try
        {
            return read(this);
        }
        finally
        {
            _gate.ExitReadLock();
        }
    }

    /// <summary>Takes over the state of <paramref name="loaded"/> (a snapshot), so everything holding this index sees it.</summary>
    public void ReplaceWith(MemoryIndex loaded)
    {
        _gate.EnterWriteLock();
        try
        {
            Docs = loaded.Docs;
            Lexical = loaded.Lexical;
            Vectors = loaded.Vectors;
            _pendingVectors.Clear();
            _pendingVectors.UnionWith(loaded._pendingVectors);
            _staged.Clear();
            foreach (var (doc, vector) in loaded._staged)
            {
                _staged[doc] = vector;
            }
            AppliedSeq = loaded.AppliedSeq;
            _lexicalRemoved = loaded._lexicalRemoved;
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    /// <summary>Writes everything after the snapshot header (see <see cref="IndexSnapshot"/>), holding writers off.</summary>
    internal void WriteSnapshot(BinaryWriter writer, SearchOptions search)
    {
        _gate.EnterReadLock();
        try
        {
            writer.Write(AppliedSeq);
            writer.Write(EmbeddingModel);
            writer.Write(search.Bm25K1);
            writer.Write(search.Bm25B);
            writer.Write(search.Stemming);
            Docs.Write(writer);
            Lexical.Write(writer);
            writer.Write(_pendingVectors.Count);
            foreach (var doc in _pendingVectors)
            {
                writer.Write(doc);
            }
            writer.Write(_staged.Count);
            foreach (var (doc, vector) in _staged)
            {
                writer.Write(doc);
                writer.Write(vector.Length);
                foreach (var value in vector)
                {
                    writer.Write(value);
                }
            }
            if (Vectors is null)
            {
                writer.Write(false);
                return;
            }
            if (Vectors is not HnswIndex hnsw)
            {
                throw new NotSupportedException("only an HNSW vector index can be snapshotted");
            }
            writer.Write(true);
            writer.Flush();
            hnsw.Save(writer.BaseStream);
        }
        finally
        {
            _gate.ExitReadLock();
        }
    }

    internal static MemoryIndex? ReadSnapshot(BinaryReader reader, string embeddingModel, SearchOptions search,
        Func<int, IVectorIndex> createVectorIndex, out string reason)
    {
        var appliedSeq = reader.ReadInt64();
        var model = reader.ReadString();
        var (k1, b, stem) = (reader.ReadSingle(), reader.ReadSingle(), reader.ReadBoolean());
        if (model != embeddingModel)
        {
            reason = $"snapshot vectors come from '{model}', the configured model is '{embeddingModel}'";
            return null;
        }
        if (k1 != search.Bm25K1 || b != search.Bm25B || stem != search.Stemming)
        {
            reason = "snapshot was built with other BM25 settings";
            return null;
        }
        var docs = DocTable.Read(reader);
        var lexical = Bm25Index.Read(reader, new TextAnalyzer(stem: stem), k1, b);
        lexical.TypoWeight = search.TypoWeight;
        var index = new MemoryIndex(createVectorIndex, embeddingModel, lexical) { Docs = docs };
        var pending = reader.ReadInt32();
        for (var i = 0; i < pending; i++)
        {
            index._pendingVectors.Add(reader.ReadInt32());
        }
        var staged = reader.ReadInt32();
        for (var i = 0; i < staged; i++)
        {
            var doc = reader.ReadInt32();
            var vector = new float[reader.ReadInt32()];
            for (var d = 0; d < vector.Length; d++)
            {
                vector[d] = reader.ReadSingle();
            }
            index._staged[doc] = vector;
        }
        if (reader.ReadBoolean())
        {
            index.Vectors = HnswIndex.Load(reader.BaseStream);
        }
        index.AppliedSeq = appliedSeq;
        index._lexicalRemoved = docs.NextDoc - docs.LiveCount; // an upper bound: BM25 checks its own dead share
        reason = "loaded";
        return index;
    }

    private void RetireLocked(string memoryId)
    {
        var old = Docs.Retire(memoryId);
        if (old >= 0)
        {
            Lexical.Remove(old);
            _lexicalRemoved++;
            if (!_staged.Remove(old) && !_pendingVectors.Remove(old))
            {
                Vectors?.Remove(old);
            }
        }
    }
}
