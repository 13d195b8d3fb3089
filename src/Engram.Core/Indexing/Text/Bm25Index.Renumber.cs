namespace Engram.Core.Indexing.Text;

public sealed partial class Bm25Index
{
    /// <summary>
    /// A copy of this index with document <c>d</c> renumbered to <c>map[d]</c> (−1: dropped, with its postings), for
    /// <paramref name="documents"/> numbers in all: a document number is never reused, so this is how the
    /// per-document arrays stop growing with churn. <paramref name="map"/> must keep the order of the documents it
    /// keeps (dense renumbering does), so every posting list stays sorted. Numbers no kept document maps to are free
    /// for new documents of the copy. This index is left as it was.
    /// </summary>
    /// <exception cref="ArgumentException">The map reorders documents, maps two to one number, or points past <paramref name="documents"/>.</exception>
    public Bm25Index Renumbered(ReadOnlySpan<int> map, int documents)
    {
        _lock.EnterReadLock();
        try
        {
            var copy = new Bm25Index(_analyzer, K1, B)
            {
                TypoWeight = TypoWeight,
                DynamicPruning = DynamicPruning,
                ParallelPostings = ParallelPostings,
                MaxScoreMaxK = MaxScoreMaxK,
            };
            var size = Math.Max(1024, documents);
            copy._docLength = new int[size];
            copy._docTerms = new int[]?[size];
            copy._used = new bool[size];
            var last = -1;
            for (var doc = 0; doc < _docLength.Length; doc++)
            {
                var renamed = doc < map.Length ? map[doc] : -1;
                if (renamed < 0 || _docTerms[doc] is not { } terms)
                {
                    continue; // dropped, or removed from this index already
                }
                if (renamed <= last || renamed >= documents)
                {
                    throw new ArgumentException($"the map sends document {doc} to {renamed}, after {last} (of {documents}): it must keep the order", nameof(map));
                }
                last = renamed;
                copy._used[renamed] = true;
                copy._docLength[renamed] = _docLength[doc];
                copy._docTerms[renamed] = terms; // never written after it is set: safe to share
                copy._liveDocs++;
                copy._totalLength += _docLength[doc];
            }
            // Every number the map hands out is taken in the copy, with or without text here: a new document always
            // gets a fresh number, never one of these.
            foreach (var renamed in map)
            {
                if (renamed >= 0 && renamed < documents)
                {
                    copy._used[renamed] = true;
                }
            }

            copy._postings = new Postings[_postings.Length];
            copy._terms = (string[])_terms.Clone();
            foreach (var (term, id) in _termIds)
            {
                copy._termIds.Add(term, id);
            }
            copy._termCount = _termCount;
            copy._neighbourhood = _neighbourhood.Clone();
            for (var t = 0; t < _termCount; t++)
            {
                ref readonly var source = ref _postings[t];
                var kept = 0;
                var docs = new int[Math.Max(4, source.LiveCount)];
                var frequencies = new ushort[docs.Length];
                for (var i = 0; i < source.Count; i++)
                {
                    var doc = source.Docs[i];
                    if (_docTerms[doc] is not null && doc < map.Length && map[doc] >= 0)
                    {
                        if (kept == docs.Length)
                        {
                            Array.Resize(ref docs, kept * 2);
                            Array.Resize(ref frequencies, kept * 2);
                        }
                        docs[kept] = map[doc];
                        frequencies[kept++] = source.Frequencies[i];
                    }
                }
                copy._postings[t] = new Postings { Docs = docs, Frequencies = frequencies, Count = kept, LiveCount = kept };
                copy._postings[t].RecomputeBounds(copy._docLength);
                copy._livePostings += kept;
            }
            copy._lastDoc = documents - 1;
            copy._ordered = _ordered; // an order-keeping map leaves every list as sorted as it was
            return copy;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
