using Engram.Core.Indexing.Vector;
using Engram.Core.Telemetry;
using static Engram.Core.Telemetry.EngramInstruments;

namespace Engram.Core.Search;

/// <summary>Reclaiming what updates and deletes leave behind (HNSW tombstones, BM25 dead postings), in the background.</summary>
public sealed partial class MemoryIndex
{
    // Held by DrainStaged for its whole batch (its document numbers are used outside _gate) and by RenumberDocs.
    private readonly Lock _drain = new();

    // One maintenance pass at a time: a graph compaction journals document numbers, so no renumbering meanwhile.
    private readonly Lock _maintenance = new();

    // Documents removed from BM25 since its last compaction (their postings stay until then); guarded by _gate.
    private int _lexicalRemoved;

    // Bumped by each renumbering: numbers handed out before it (PendingSnapshot) no longer name the same documents.
    private long _docEpoch;
    private long _renumberings;

    /// <summary>Renumberings since this index was made (each gave the live documents dense numbers again).</summary>
    public long Renumberings => Interlocked.Read(ref _renumberings);

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
        if (!_maintenance.TryEnter())
        {
            return default;
        }
        try
        {
            var done = CompactIndexes(minShare, minimum, ct);
            return done with { Documents = RenumberDocs(minimum) };
        }
        finally
        {
            _maintenance.Exit();
        }
    }

    /// <summary>
    /// Gives the live documents dense numbers again once the retired numbers are at least as many as the live ones
    /// (and at least <paramref name="minimum"/>); returns how many numbers were freed. Document numbers are never
    /// reused (BM25 refuses a used one), so without this the per-document arrays of every index grow with every
    /// update and delete, and a server churning for long enough would run out of int numbers. Amortised, each
    /// retired number costs one row copy. Searches go on meanwhile; writers wait while BM25 is rewritten with the
    /// new numbers (a pass over its postings) and the graph's and table's maps are swapped.
    /// </summary>
    internal int RenumberDocs(int minimum)
    {
        lock (_drain)
        {
            _gate.EnterUpgradeableReadLock(); // writers wait, searches go on
            try
            {
                var retired = Docs.NextDoc - Docs.LiveCount;
                if (retired < minimum || retired < Docs.LiveCount || Vectors is not (null or HnswIndex))
                {
                    return 0;
                }
                var map = Docs.RenumberMap();
                var lexical = Lexical.Renumbered(map, Docs.LiveCount);
                var staged = _staged.ToDictionary(entry => map[entry.Key], entry => entry.Value);
                var pending = _pendingVectors.Select(doc => map[doc]).ToList();
                _gate.EnterWriteLock();
                try
                {
                    if (Vectors is HnswIndex graph && !graph.RenumberDocs(map))
                    {
                        return 0; // a compaction started by someone else holds old numbers: next time
                    }
                    Docs.Renumber(map);
                    Lexical = lexical;
                    _staged.Clear();
                    foreach (var (doc, vector) in staged)
                    {
                        _staged[doc] = vector;
                    }
                    _pendingVectors.Clear();
                    _pendingVectors.UnionWith(pending);
                    _lexicalRemoved = 0;
                    _docEpoch++;
                    Interlocked.Increment(ref _vectorMoves); // the snapshot is out of date
                    Interlocked.Increment(ref _renumberings);
                    EngramInstruments.IndexCompactions.Add(1, new KeyValuePair<string, object?>("index", Documents));
                    return retired;
                }
                finally
                {
                    _gate.ExitWriteLock();
                }
            }
            finally
            {
                _gate.ExitUpgradeableReadLock();
            }
        }
    }

    private IndexCompaction CompactIndexes(double minShare, int minimum, CancellationToken ct)
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
        return new IndexCompaction(vectors, postings, 0);
    }
}

/// <summary>
/// Removed entries still held: <paramref name="Vectors"/> HNSW tombstones out of <paramref name="VectorNodes"/>
/// nodes; <paramref name="Lexical"/> documents whose BM25 postings are dead but not yet dropped; <paramref name="Documents"/>
/// retired document numbers (a small row each in the doc table and the other indexes' per-document arrays, until
/// the documents are renumbered).
/// </summary>
public readonly record struct IndexTombstones(int Vectors, int VectorNodes, int Lexical, int Documents);

/// <summary>What one <see cref="MemoryIndex.Compact"/> reclaimed: HNSW tombstones, BM25 postings and retired document numbers.</summary>
public readonly record struct IndexCompaction(int Vectors, int Postings, int Documents);
