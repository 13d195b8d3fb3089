using Engram.Core.Indexing.Text;

namespace Engram.Core.Search;

/// <summary>
/// Renumbers a <see cref="Bm25Index"/>'s documents through its own snapshot format (<see cref="Bm25Index.Write"/> /
/// <see cref="Bm25Index.Read"/>): written, rewritten with the new numbers (postings of retired documents dropped),
/// read back. BM25 never reuses a document number, so this is how its per-document arrays stop growing with churn.
/// The rewrite knows that format (terms with their postings, then per-document data, then the totals, then the typo
/// table, copied as is); a format it does not recognise throws <see cref="InvalidDataException"/> and nothing changes.
/// </summary>
internal static class LexicalRenumbering
{
    public static Bm25Index Renumber(Bm25Index lexical, ReadOnlySpan<int> map, int liveDocs)
    {
        using var written = new MemoryStream();
        using (var writer = new BinaryWriter(written, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            lexical.Write(writer);
        }
        written.Position = 0;
        using var reader = new BinaryReader(written, System.Text.Encoding.UTF8, leaveOpen: true);
        using var rewritten = new MemoryStream((int)written.Length);
        using (var writer = new BinaryWriter(rewritten, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            var terms = reader.ReadInt32();
            writer.Write(terms);
            var docs = new List<int>();
            var frequencies = new List<ushort>();
            long postings = 0;
            for (var t = 0; t < terms; t++)
            {
                writer.Write(reader.ReadString());
                var count = reader.ReadInt32();
                reader.ReadInt32(); // live count: every kept posting is live
                docs.Clear();
                frequencies.Clear();
                for (var i = 0; i < count; i++)
                {
                    var doc = reader.ReadInt32();
                    var frequency = reader.ReadUInt16();
                    var renamed = doc >= 0 && doc < map.Length ? map[doc] : -1;
                    if (renamed >= 0)
                    {
                        docs.Add(renamed);
                        frequencies.Add(frequency);
                    }
                }
                writer.Write(docs.Count);
                writer.Write(docs.Count);
                for (var i = 0; i < docs.Count; i++)
                {
                    writer.Write(docs[i]);
                    writer.Write(frequencies[i]);
                }
                postings += docs.Count;
            }

            var oldDocs = reader.ReadInt32();
            writer.Write(liveDocs);
            var nextDoc = 0;
            for (var doc = 0; doc < oldDocs; doc++)
            {
                var used = reader.ReadBoolean();
                var length = reader.ReadInt32();
                var termCount = reader.ReadInt32();
                var docTerms = new int[Math.Max(0, termCount)];
                for (var i = 0; i < docTerms.Length; i++)
                {
                    docTerms[i] = reader.ReadInt32();
                }
                if (doc >= map.Length || map[doc] < 0)
                {
                    continue;
                }
                if (map[doc] != nextDoc || !used)
                {
                    throw new InvalidDataException("lexical renumbering: the documents do not line up with the map");
                }
                nextDoc++;
                writer.Write(true);
                writer.Write(length);
                writer.Write(termCount);
                foreach (var term in docTerms)
                {
                    writer.Write(term);
                }
            }
            for (; nextDoc < liveDocs; nextDoc++)
            {
                writer.Write(true); // live in the table, never added to BM25 (beyond what it has written)
                writer.Write(0);
                writer.Write(-1);
            }
            var live = reader.ReadInt32();
            var totalLength = reader.ReadInt64();
            reader.ReadInt32(); // dead postings: none are left
            var livePostings = reader.ReadInt32();
            if (livePostings != postings)
            {
                throw new InvalidDataException($"lexical renumbering: {postings} postings kept, the index counts {livePostings} live");
            }
            writer.Write(live);
            writer.Write(totalLength);
            writer.Write(0);
            writer.Write(livePostings);
            written.CopyTo(rewritten); // the typo table, as is
        }
        rewritten.Position = 0;
        using var back = new BinaryReader(rewritten, System.Text.Encoding.UTF8, leaveOpen: true);
        var renumbered = Bm25Index.Read(back, lexical.Analyzer, lexical.K1, lexical.B);
        renumbered.TypoWeight = lexical.TypoWeight;
        renumbered.DynamicPruning = lexical.DynamicPruning;
        if (renumbered.Count != lexical.Count || back.BaseStream.Position != back.BaseStream.Length)
        {
            throw new InvalidDataException("lexical renumbering: the rewritten index does not read back whole");
        }
        return renumbered;
    }
}
