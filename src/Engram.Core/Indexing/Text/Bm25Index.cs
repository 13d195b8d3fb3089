using System.Buffers;
using System.Runtime.CompilerServices;

namespace Engram.Core.Indexing.Text;

/// <summary>
/// An in-memory BM25 inverted index over caller-assigned document numbers. Postings are kept in
/// increasing document order in plain arrays; removal tombstones a document (its terms are kept per
/// document so document frequencies stay exact) and <see cref="Compact"/> drops dead postings.
/// A document number is used once: the search layer gives every indexed memory version a fresh one,
/// so a removed number's stale postings can never be mistaken for a new document's.
/// Thread-safety: many concurrent searches, one writer at a time (a reader-writer lock).
/// </summary>
public sealed partial class Bm25Index
{
    // A private pool whose arrays are always handed back all-zero (every touched slot is reset after
    // use), so a query never pays to clear a corpus-sized accumulator; the shared pool's arrays may be dirty.
    private static readonly ArrayPool<float> ScorePool = ArrayPool<float>.Create(1 << 27, 8);

    private readonly TextAnalyzer _analyzer;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<string, int> _termIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _termLookup;
    private Postings[] _postings = new Postings[1024];
    private string[] _terms = new string[1024];
    private int _termCount;
    private TermNeighbourhood _neighbourhood = new();

    // Per document: length in terms (0 = absent or removed) and its distinct term ids.
    private int[] _docLength = new int[1024];
    private int[]?[] _docTerms = new int[]?[1024];
    private bool[] _used = new bool[1024];
    private int _liveDocs;
    private long _totalLength;
    private int _deadPostings;
    private int _livePostings;

    public Bm25Index(TextAnalyzer? analyzer = null, float k1 = 1.2f, float b = 0.75f)
    {
        _analyzer = analyzer ?? TextAnalyzer.Default;
        _termLookup = _termIds.GetAlternateLookup<ReadOnlySpan<char>>();
        K1 = k1;
        B = b;
    }

    public float K1 { get; }

    public float B { get; }

    public int Count => _liveDocs;

    public int TermCount => _termCount;

    public TextAnalyzer Analyzer => _analyzer;

    /// <summary>
    /// How much a typo correction counts: a query word absent from the vocabulary is matched to up to
    /// <see cref="MaxCorrections"/> of the nearest vocabulary words (edit distance 1, or 2 for words of six
    /// characters or more), each scored as a query term of weight <c>TypoWeight^distance</c>, so a corrected
    /// word always counts less than the same word typed right. 0 turns typo tolerance off.
    /// </summary>
    public float TypoWeight { get; set; } = 0.3f;

    /// <summary>Most vocabulary words one misspelt query word is expanded to (the most frequent at the nearest distance).</summary>
    public const int MaxCorrections = 3;

    /// <summary>Bytes held by the typo table (the deletion map over the vocabulary).</summary>
    public long TypoTableBytes => _neighbourhood.Bytes;

    /// <summary>Indexes <paramref name="text"/> as document <paramref name="doc"/>, a number not used before.</summary>
    /// <exception cref="InvalidOperationException">The number was already used.</exception>
    public void Add(int doc, ReadOnlySpan<char> text)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(doc);
        var counts = new TermCounts(this);
        _lock.EnterWriteLock();
        try
        {
            EnsureDocCapacity(doc);
            if (_used[doc])
            {
                throw new InvalidOperationException($"document number {doc} was already used; give every document version a fresh number");
            }
            _used[doc] = true;
            _analyzer.Analyze(text, ref counts, static (term, ref c) => c.Add(term));
            if (counts.Length == 0)
            {
                return;
            }
            var terms = counts.TermIds();
            foreach (var termId in terms)
            {
                ref var postings = ref _postings[termId];
                postings.Append(doc, counts.CountOf(termId));
                _livePostings++;
            }
            _docTerms[doc] = terms;
            _docLength[doc] = counts.Length;
            _liveDocs++;
            _totalLength += counts.Length;
        }
        finally
        {
            counts.Dispose();
            _lock.ExitWriteLock();
        }
    }

    public void Remove(int doc)
    {
        _lock.EnterWriteLock();
        try
        {
            RemoveLocked(doc);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// Scores every document that holds a query term and keeps the best <c>results.Length</c> that
    /// <paramref name="filter"/> allows. Returns how many were written to <paramref name="results"/>, best first.
    /// </summary>
    public int Search<TFilter>(ReadOnlySpan<char> query, Span<ScoredDoc> results, TFilter filter)
        where TFilter : IDocFilter
    {
        if (results.IsEmpty)
        {
            return 0;
        }
        _lock.EnterReadLock();
        try
        {
            if (_liveDocs == 0)
            {
                return 0;
            }
            var terms = new QueryTerms(this);
            _analyzer.Analyze(query, ref terms, static (term, ref q) => q.Add(term));
            if (terms.Count == 0)
            {
                terms.Dispose();
                return 0;
            }
            var scores = ScorePool.Rent(_docLength.Length);
            var touched = ArrayPool<int>.Shared.Rent(Math.Min(_docLength.Length, Math.Max(64, SumPostings(ref terms))));
            var touchedCount = 0;
            try
            {
                var n = (float)_liveDocs;
                var avgLength = (float)((double)_totalLength / _liveDocs);
                var k1 = K1;
                var lengthNorm = k1 * (1 - B);
                var lengthScale = k1 * B / avgLength;
                for (var q = 0; q < terms.Count; q++)
                {
                    ref var postings = ref _postings[terms.TermAt(q)];
                    var df = postings.LiveCount;
                    if (df == 0)
                    {
                        continue;
                    }
                    var idf = MathF.Log(1 + ((n - df + 0.5f) / (df + 0.5f))) * terms.WeightAt(q);
                    var docs = postings.Docs.AsSpan(0, postings.Count);
                    var tfs = postings.Frequencies.AsSpan(0, postings.Count);
                    for (var i = 0; i < docs.Length; i++)
                    {
                        var doc = docs[i];
                        var length = _docLength[doc];
                        if (length == 0)
                        {
                            continue; // removed
                        }
                        float tf = tfs[i];
                        var score = idf * tf * (k1 + 1) / (tf + lengthNorm + (lengthScale * length));
                        if (scores[doc] == 0)
                        {
                            touched[touchedCount++] = doc;
                        }
                        scores[doc] += score;
                    }
                }

                var top = new TopK(results);
                for (var i = 0; i < touchedCount; i++)
                {
                    var doc = touched[i];
                    var score = scores[doc];
                    if (score > top.Threshold && filter.Allows(doc))
                    {
                        top.Add(doc, score);
                    }
                }
                return top.Finish();
            }
            finally
            {
                for (var i = 0; i < touchedCount; i++)
                {
                    scores[touched[i]] = 0;
                }
                ScorePool.Return(scores);
                ArrayPool<int>.Shared.Return(touched);
                terms.Dispose();
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Drops postings of removed documents when they are a large share; call from a maintenance job.</summary>
    public int Compact(double minDeadShare = 0.2)
    {
        _lock.EnterWriteLock();
        try
        {
            if (_deadPostings == 0 || _deadPostings < minDeadShare * (_livePostings + _deadPostings))
            {
                return 0;
            }
            var dropped = 0;
            for (var t = 0; t < _termCount; t++)
            {
                dropped += _postings[t].RemoveDead(_docTerms);
            }
            _deadPostings = 0;
            return dropped;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private int SumPostings(ref QueryTerms query)
    {
        var sum = 0;
        for (var q = 0; q < query.Count; q++)
        {
            sum += _postings[query.TermAt(q)].Count;
        }
        return sum;
    }

    private void RemoveLocked(int doc)
    {
        if (doc >= _docTerms.Length || _docTerms[doc] is not { } terms)
        {
            return;
        }
        foreach (var termId in terms)
        {
            _postings[termId].LiveCount--;
        }
        _deadPostings += terms.Length;
        _livePostings -= terms.Length;
        _totalLength -= _docLength[doc];
        _liveDocs--;
        _docTerms[doc] = null;
        _docLength[doc] = 0;
    }

    private void EnsureDocCapacity(int doc)
    {
        if (doc < _docLength.Length)
        {
            return;
        }
        var size = Math.Max(doc + 1, _docLength.Length * 2);
        Array.Resize(ref _docLength, size);
        Array.Resize(ref _docTerms, size);
        Array.Resize(ref _used, size);
    }

    private int TermIdFor(ReadOnlySpan<char> term)
    {
        if (_termLookup.TryGetValue(term, out var id))
        {
            return id;
        }
        id = _termCount++;
        var text = term.ToString();
        _termIds.Add(text, id);
        if (id == _postings.Length)
        {
            Array.Resize(ref _postings, id * 2);
            Array.Resize(ref _terms, id * 2);
        }
        _postings[id] = new Postings();
        _terms[id] = text;
        if (TermNeighbourhood.IsEligible(term))
        {
            _neighbourhood.Add(id, term);
        }
        return id;
    }

    private int ExistingTermId(ReadOnlySpan<char> term) => _termLookup.TryGetValue(term, out var id) ? id : -1;

    /// <summary>Adds the nearest vocabulary words to a query word the vocabulary does not hold (see <see cref="TypoWeight"/>).</summary>
    private void AddCorrections(ReadOnlySpan<char> word, ref QueryTerms terms)
    {
        var distance = TermNeighbourhood.AllowedDistance(word.Length);
        if (distance == 0 || TypoWeight <= 0 || !TermNeighbourhood.IsEligible(word))
        {
            return;
        }
        var nearest = new Corrections(this, word.ToString(), distance);
        _neighbourhood.Candidates(word, distance, ref nearest, static (termId, ref n) => n.Consider(termId));
        for (var i = 0; i < nearest.Count; i++)
        {
            terms.AddWeighted(nearest.TermAt(i), MathF.Pow(TypoWeight, nearest.Distance));
        }
    }

    /// <summary>The most frequent live terms at the smallest edit distance from a word, up to <see cref="MaxCorrections"/>.</summary>
    private struct Corrections(Bm25Index index, string word, int maxDistance)
    {
        private readonly Bm25Index _index = index;
        private readonly string _word = word;
        private readonly int _maxDistance = maxDistance;
        private (int Term, int Df) _first;
        private (int Term, int Df) _second;
        private (int Term, int Df) _third;

        public int Count { get; private set; }

        public int Distance { get; private set; } = int.MaxValue;

        public readonly int TermAt(int i) => i switch { 0 => _first.Term, 1 => _second.Term, _ => _third.Term };

        public void Consider(int termId)
        {
            var df = _index._postings[termId].LiveCount;
            if (df == 0 || Holds(termId))
            {
                return;
            }
            var distance = EditDistance.Bounded(_word, _index._terms[termId], Math.Min(Distance, _maxDistance));
            if (distance > _maxDistance || distance > Distance)
            {
                return;
            }
            if (distance < Distance)
            {
                Distance = distance;
                Count = 0;
            }
            var candidate = (termId, df);
            if (Count < MaxCorrections)
            {
                Count++;
            }
            else if (!Better(candidate, _third))
            {
                return;
            }
            // Insert in order (most documents first, then lower term id, so the choice is deterministic).
            if (Count == 1 || Better(candidate, _first))
            {
                (_first, _second, _third) = (candidate, _first, _second);
            }
            else if (Count == 2 || Better(candidate, _second))
            {
                (_second, _third) = (candidate, _second);
            }
            else
            {
                _third = candidate;
            }
        }

        private readonly bool Holds(int termId) =>
            (Count > 0 && _first.Term == termId) || (Count > 1 && _second.Term == termId) || (Count > 2 && _third.Term == termId);

        private static bool Better((int Term, int Df) a, (int Term, int Df) b) => a.Df > b.Df || (a.Df == b.Df && a.Term < b.Term);
    }

    private struct Postings
    {
        public int[] Docs;
        public ushort[] Frequencies;
        public int Count;
        public int LiveCount;

        public void Append(int doc, int frequency)
        {
            Docs ??= new int[4];
            Frequencies ??= new ushort[4];
            if (Count == Docs.Length)
            {
                Array.Resize(ref Docs, Count * 2);
                Array.Resize(ref Frequencies, Count * 2);
            }
            Docs[Count] = doc;
            Frequencies[Count] = (ushort)Math.Min(frequency, ushort.MaxValue);
            Count++;
            LiveCount++;
        }

        public int RemoveDead(int[]?[] docTerms)
        {
            var write = 0;
            for (var read = 0; read < Count; read++)
            {
                if (docTerms[Docs[read]] is not null && write != read)
                {
                    Docs[write] = Docs[read];
                    Frequencies[write] = Frequencies[read];
                }
                if (docTerms[Docs[read]] is not null)
                {
                    write++;
                }
            }
            var removed = Count - write;
            Count = write;
            return removed;
        }
    }

    /// <summary>Term frequencies of one document being indexed (pooled arrays, no per-term allocation for known terms).</summary>
    private struct TermCounts(Bm25Index index) : IDisposable
    {
        private int[] _ids = ArrayPool<int>.Shared.Rent(64);
        private int[] _counts = ArrayPool<int>.Shared.Rent(64);
        private int _distinct;

        public int Length { get; private set; }

        public void Add(ReadOnlySpan<char> term)
        {
            var id = index.TermIdFor(term);
            Length++;
            for (var i = 0; i < _distinct; i++)
            {
                if (_ids[i] == id)
                {
                    _counts[i]++;
                    return;
                }
            }
            if (_distinct == _ids.Length)
            {
                Grow(ref _ids);
                Grow(ref _counts);
            }
            _ids[_distinct] = id;
            _counts[_distinct++] = 1;
        }

        public readonly int[] TermIds() => _ids.AsSpan(0, _distinct).ToArray();

        public readonly int CountOf(int termId)
        {
            for (var i = 0; i < _distinct; i++)
            {
                if (_ids[i] == termId)
                {
                    return _counts[i];
                }
            }
            return 0;
        }

        public readonly void Dispose()
        {
            ArrayPool<int>.Shared.Return(_ids);
            ArrayPool<int>.Shared.Return(_counts);
        }

        private static void Grow(ref int[] array)
        {
            var bigger = ArrayPool<int>.Shared.Rent(array.Length * 2);
            array.CopyTo(bigger, 0);
            ArrayPool<int>.Shared.Return(array);
            array = bigger;
        }
    }

    /// <summary>
    /// Distinct known query terms with their weights: a repeated query word weighs more, a typo
    /// correction less (<see cref="TypoWeight"/>).
    /// </summary>
    private struct QueryTerms(Bm25Index index) : IDisposable
    {
        private int[] _ids = ArrayPool<int>.Shared.Rent(32);
        private float[] _weights = ArrayPool<float>.Shared.Rent(32);

        public int Count { get; private set; }

        public void Add(ReadOnlySpan<char> term)
        {
            var id = index.ExistingTermId(term);
            if (id >= 0 && index._postings[id].LiveCount > 0)
            {
                AddWeighted(id, 1f);
            }
            else
            {
                index.AddCorrections(term, ref this);
            }
        }

        public void AddWeighted(int id, float weight)
        {
            for (var i = 0; i < Count; i++)
            {
                if (_ids[i] == id)
                {
                    _weights[i] += weight;
                    return;
                }
            }
            if (Count == _ids.Length)
            {
                return; // more than 32 distinct known terms: the rest add little
            }
            _ids[Count] = id;
            _weights[Count++] = weight;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly int TermAt(int i) => _ids[i];

        public readonly float WeightAt(int i) => _weights[i];

        public readonly void Dispose()
        {
            ArrayPool<int>.Shared.Return(_ids);
            ArrayPool<float>.Shared.Return(_weights);
        }
    }
}
