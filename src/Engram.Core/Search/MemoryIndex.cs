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
public sealed class MemoryIndex(Func<int, IVectorIndex> createVectorIndex, string embeddingModel, Bm25Index? lexical = null)
{
    private readonly ReaderWriterLockSlim _gate = new(LockRecursionPolicy.NoRecursion);
    private readonly HashSet<int> _pendingVectors = [];
    private long _appliedSeq;

    public DocTable Docs { get; private set; } = new();

    public Bm25Index Lexical { get; private set; } = lexical ?? new Bm25Index();

    /// <summary>Null until the first vector arrives (a remote model's length is known only then).</summary>
    public IVectorIndex? Vectors { get; private set; }

    /// <summary>The model every vector in <see cref="Vectors"/> came from.</summary>
    public string EmbeddingModel { get; } = embeddingModel;

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
    public void Upsert(string tenant, Memory memory, ReadOnlySpan<float> vector, bool hasVector)
    {
        _gate.EnterWriteLock();
        try
        {
            RetireLocked(memory.Id);
            var doc = Docs.Add(tenant, memory);
            Lexical.Add(doc, memory.Content);
            if (hasVector)
            {
                AddVectorLocked(doc, vector);
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
    public List<(string Id, int Doc)> PendingSnapshot(int max)
    {
        _gate.EnterReadLock();
        try
        {
            return _pendingVectors.Take(max).Select(doc => (Docs[doc].Id, doc)).ToList();
        }
        finally
        {
            _gate.ExitReadLock();
        }
    }

    /// <summary>Attaches a vector computed later; ignored when the memory changed or went away meanwhile.</summary>
    public bool AttachVector(int doc, ReadOnlySpan<float> vector)
    {
        _gate.EnterWriteLock();
        try
        {
            if (!_pendingVectors.Remove(doc) || !Docs[doc].Live)
            {
                return false;
            }
            AddVectorLocked(doc, vector);
            return true;
        }
        finally
        {
            _gate.ExitWriteLock();
        }
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
            AppliedSeq = loaded.AppliedSeq;
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
        var index = new MemoryIndex(createVectorIndex, embeddingModel, lexical) { Docs = docs };
        var pending = reader.ReadInt32();
        for (var i = 0; i < pending; i++)
        {
            index._pendingVectors.Add(reader.ReadInt32());
        }
        if (reader.ReadBoolean())
        {
            index.Vectors = HnswIndex.Load(reader.BaseStream);
        }
        index.AppliedSeq = appliedSeq;
        reason = "loaded";
        return index;
    }

    private void AddVectorLocked(int doc, ReadOnlySpan<float> vector)
    {
        Vectors ??= createVectorIndex(vector.Length);
        if (vector.Length != Vectors.Dimensions)
        {
            // The provider changed its vector length under us: keep the memory findable lexically.
            _pendingVectors.Add(doc);
            return;
        }
        Vectors.Add(doc, vector);
    }

    private void RetireLocked(string memoryId)
    {
        var old = Docs.Retire(memoryId);
        if (old >= 0)
        {
            Lexical.Remove(old);
            if (!_pendingVectors.Remove(old))
            {
                Vectors?.Remove(old);
            }
        }
    }
}
