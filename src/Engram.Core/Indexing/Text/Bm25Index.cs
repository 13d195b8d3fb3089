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
    private int _lastDoc = -1;
    private bool _ordered = true; // documents were added in increasing number order, so postings are sorted (pruning needs it)
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
            _ordered &= doc > _lastDoc;
            _lastDoc = Math.Max(_lastDoc, doc);
            _analyzer.Analyze(text, ref counts, static (term, ref c) => c.Add(term));
            if (counts.Length == 0)
            {
                return;
            }
            var terms = counts.TermIds();
            foreach (var termId in terms)
            {
                ref var postings = ref _postings[termId];
                postings.Append(doc, counts.CountOf(termId), counts.Length);
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

    /// <summary>The query's terms with live documents, their weight (idf × query weight) and score bound, best bound first.</summary>
    private int PlanTerms(ref QueryTerms terms, in Bm25Scorer bm25, Span<TermPlan> plan)
    {
        var count = 0;
        for (var q = 0; q < terms.Count; q++)
        {
            var termId = terms.TermAt(q);
            ref readonly var postings = ref _postings[termId];
            if (postings.LiveCount == 0)
            {
                continue;
            }
            var weight = bm25.Idf(postings.LiveCount) * terms.WeightAt(q);
            // A hair above the exact corner score, so float rounding can never make a real score exceed its bound.
            var bound = bm25.Score(weight, postings.MaxFrequency, postings.MinLength) * 1.0001f;
            var entry = new TermPlan(termId, weight, bound);
            var at = count++;
            while (at > 0 && plan[at - 1].UpperBound < bound)
            {
                plan[at] = plan[at - 1];
                at--;
            }
            plan[at] = entry;
        }
        return count;
    }

    private readonly record struct TermPlan(int TermId, float Weight, float UpperBound);

    /// <summary>The BM25 pieces of one search: idf and the saturating, length-normalised term frequency.</summary>
    private readonly struct Bm25Scorer(int liveDocs, long totalLength, float k1, float b)
    {
        private readonly float _n = liveDocs;
        private readonly float _k1 = k1;
        private readonly float _lengthNorm = k1 * (1 - b);
        private readonly float _lengthScale = k1 * b / (float)((double)totalLength / liveDocs);

        public float Idf(int df) => MathF.Log(1 + ((_n - df + 0.5f) / (df + 0.5f)));

        /// <summary>One term's BM25 score in one document: <paramref name="weight"/> (idf × query weight) times the saturated frequency.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Score(float weight, float tf, int length) => weight * tf * (_k1 + 1) / (tf + _lengthNorm + (_lengthScale * length));

        /// <summary>Fills <paramref name="table"/>[length] with the score of one occurrence in a document of that length.</summary>
        public void FillSingle(float weight, Span<float> table)
        {
            for (var length = 0; length < table.Length; length++)
            {
                table[length] = Score(weight, 1, length);
            }
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
                _postings[t].RecomputeBounds(_docLength);
            }
            _deadPostings = 0;
            return dropped;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
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

        public ushort MaxFrequency;
        public int MinLength; // 0 until the first posting

        public void Append(int doc, int frequency, int length)
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
            Widen(Frequencies[Count - 1], length);
        }

        /// <summary>Keeps the largest frequency and shortest document, the corners of the term's best score (removals leave them, still an upper bound).</summary>
        public void Widen(ushort frequency, int length)
        {
            MaxFrequency = Math.Max(MaxFrequency, frequency);
            MinLength = MinLength == 0 ? length : Math.Min(MinLength, length);
        }

        public void RecomputeBounds(int[] docLength)
        {
            (MaxFrequency, MinLength) = (0, 0);
            for (var i = 0; i < Count; i++)
            {
                if (docLength[Docs[i]] > 0)
                {
                    Widen(Frequencies[i], docLength[Docs[i]]);
                }
            }
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
