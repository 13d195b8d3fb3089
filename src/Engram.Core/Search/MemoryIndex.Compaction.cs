using Engram.Core.Indexing.Vector;
using Engram.Core.Telemetry;

namespace Engram.Core.Search;

/// <summary>Reclaiming what updates and deletes leave behind (HNSW tombstones, BM25 dead postings), in the background.</summary>
public sealed partial class MemoryIndex
{
    // Documents removed from BM25 since its last compaction (their postings stay until then); guarded by _gate.
    private int _lexicalRemoved;

    /// <summary>Removed entries each index still holds; see <see cref="IndexTombstones"/>.</summary>
    public IndexTombstones Tombstones => Read(index => new IndexTombstones(
        index.Vectors is HnswIndex graph ? graph.Tombstones : 0,
        index.Vectors is HnswIndex nodes ? nodes.NodeCount : index.Vectors?.Count ?? 0,
        index._lexicalRemoved,
        index.Docs.NextDoc - index.Docs.LiveCount));

    /// <summary>
    /// Compacts each index whose removed entries reach <paramref name="minShare"/> of it and at least
    /// <paramref name="minimum"/>: the HNSW graph is rebuilt from its own live rows beside the live one and swapped in
    /// (searches and writes go on meanwhile, <see cref="HnswIndex.Compact"/>); BM25 drops its dead postings (its
    /// own lock, a pass over the postings). Returns what was reclaimed.
    /// </summary>
    public IndexCompaction Compact(double minShare, int minimum, CancellationToken ct = default)
    {
        // The graph synchronises itself: no lock of this index is held while it rebuilds.
        var vectors = Vectors is HnswIndex graph ? graph.Compact(minShare, minimum, ct) : 0;
        if (vectors > 0)
        {
            EngramInstruments.IndexCompactions.Add(1, new KeyValuePair<string, object?>("index", EngramInstruments.Vectors));
        }
        var postings = 0;
        _gate.EnterReadLock(); // no removal meanwhile, so the count of removed documents resets exactly
        try
        {
            if (_lexicalRemoved >= minimum)
            {
                postings = Lexical.Compact(minShare);
                if (postings > 0)
                {
                    _lexicalRemoved = 0;
                }
            }
        }
        finally
        {
            _gate.ExitReadLock();
        }
        if (postings > 0)
        {
            EngramInstruments.IndexCompactions.Add(1, new KeyValuePair<string, object?>("index", EngramInstruments.Lexical));
        }
        return new IndexCompaction(vectors, postings);
    }
}

/// <summary>
/// Removed entries still held: <paramref name="Vectors"/> HNSW tombstones out of <paramref name="VectorNodes"/>
/// nodes; <paramref name="Lexical"/> documents whose BM25 postings are dead but not yet dropped; <paramref name="Documents"/>
/// retired document numbers (a small row each in the doc table; numbers are never reused).
/// </summary>
public readonly record struct IndexTombstones(int Vectors, int VectorNodes, int Lexical, int Documents);

/// <summary>What one <see cref="MemoryIndex.Compact"/> reclaimed: HNSW tombstones and BM25 postings.</summary>
public readonly record struct IndexCompaction(int Vectors, int Postings);
