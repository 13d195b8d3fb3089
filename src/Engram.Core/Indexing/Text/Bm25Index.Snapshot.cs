namespace Engram.Core.Indexing.Text;

public sealed partial class Bm25Index
{
    /// <summary>Writes the whole index (terms, postings, per-document data, the typo table); the caller holds writers off.</summary>
    public void Write(BinaryWriter writer)
    {
        _lock.EnterReadLock();
        try
        {
            var terms = _terms;
            writer.Write(_termCount);
            for (var t = 0; t < _termCount; t++)
            {
                writer.Write(terms[t]);
                ref var postings = ref _postings[t];
                writer.Write(postings.Count);
                writer.Write(postings.LiveCount);
                for (var i = 0; i < postings.Count; i++)
                {
                    writer.Write(postings.Docs[i]);
                    writer.Write(postings.Frequencies[i]);
                }
            }
            var docs = _docLength.Length;
            while (docs > 0 && !_used[docs - 1])
            {
                docs--;
            }
            writer.Write(docs);
            for (var doc = 0; doc < docs; doc++)
            {
                writer.Write(_used[doc]);
                writer.Write(_docLength[doc]);
                var docTerms = _docTerms[doc];
                writer.Write(docTerms?.Length ?? -1);
                if (docTerms is not null)
                {
                    foreach (var term in docTerms)
                    {
                        writer.Write(term);
                    }
                }
            }
            writer.Write(_liveDocs);
            writer.Write(_totalLength);
            writer.Write(_deadPostings);
            writer.Write(_livePostings);
            _neighbourhood.Write(writer);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Reads an index written by <see cref="Write"/> with the same analyzer and parameters.</summary>
    public static Bm25Index Read(BinaryReader reader, TextAnalyzer analyzer, float k1, float b)
    {
        var index = new Bm25Index(analyzer, k1, b);
        var termCount = reader.ReadInt32();
        index._postings = new Postings[Math.Max(1024, termCount)];
        index._terms = new string[Math.Max(1024, termCount)];
        for (var t = 0; t < termCount; t++)
        {
            var term = reader.ReadString();
            index._termIds.Add(term, t);
            index._terms[t] = term;
            var count = reader.ReadInt32();
            var postings = new Postings
            {
                Docs = new int[Math.Max(4, count)],
                Frequencies = new ushort[Math.Max(4, count)],
                Count = count,
                LiveCount = reader.ReadInt32(),
            };
            for (var i = 0; i < count; i++)
            {
                postings.Docs[i] = reader.ReadInt32();
                postings.Frequencies[i] = reader.ReadUInt16();
            }
            index._postings[t] = postings;
        }
        index._termCount = termCount;
        var docs = reader.ReadInt32();
        var size = Math.Max(1024, docs);
        index._docLength = new int[size];
        index._docTerms = new int[]?[size];
        index._used = new bool[size];
        for (var doc = 0; doc < docs; doc++)
        {
            index._used[doc] = reader.ReadBoolean();
            index._docLength[doc] = reader.ReadInt32();
            var length = reader.ReadInt32();
            if (length >= 0)
            {
                var terms = new int[length];
                for (var i = 0; i < length; i++)
                {
                    terms[i] = reader.ReadInt32();
                }
                index._docTerms[doc] = terms;
            }
        }
        index._liveDocs = reader.ReadInt32();
        index._totalLength = reader.ReadInt64();
        index._deadPostings = reader.ReadInt32();
        index._livePostings = reader.ReadInt32();
        index._neighbourhood = TermNeighbourhood.Read(reader);
        for (var t = 0; t < termCount; t++)
        {
            index._postings[t].RecomputeBounds(index._docLength);
            if (index._postings[t].Count > 0)
            {
                var postings = index._postings[t];
                index._lastDoc = Math.Max(index._lastDoc, postings.Docs[postings.Count - 1]);
                for (var i = 1; i < postings.Count && index._ordered; i++)
                {
                    index._ordered = postings.Docs[i - 1] < postings.Docs[i];
                }
            }
        }
        index._lastDoc = Math.Max(index._lastDoc, docs - 1);
        return index;
    }
}
