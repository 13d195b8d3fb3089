using Engram.Core.Indexing.Text;
using Lucene.Net.Analysis;
using Lucene.Net.Analysis.Core;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Analysis.Util;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;
using LuceneDirectory = Lucene.Net.Store.Directory;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// Lucene.Net 4.8 as a lexical anchor: one field, an analyzer built from Lucene's own parts to match
/// Engram's (<see cref="EngramLikeAnalyzer"/>), <see cref="BM25Similarity"/> with Engram's k1 and b, an
/// <see cref="MMapDirectory"/> in a temporary folder (read through the page cache, so from memory once
/// warm), force-merged to one segment. A query is a BooleanQuery of SHOULD term clauses, one per
/// analyzed query term (a repeated word adds a clause, as Engram weighs it twice); the document number
/// is a numeric doc value, so the ranking is read back without stored fields.
/// </summary>
public sealed class LuceneIndex : IDisposable
{
    private const string Field = "content";
    private readonly LuceneDirectory _directory;
    private readonly DirectoryReader _reader;
    private readonly IndexSearcher _searcher;
    private readonly NumericDocValues _ids;
    private readonly Analyzer _analyzer;

    private LuceneIndex(LuceneDirectory directory, Analyzer analyzer, Similarity similarity)
    {
        _directory = directory;
        _analyzer = analyzer;
        _reader = DirectoryReader.Open(directory);
        _searcher = new IndexSearcher(_reader) { Similarity = similarity };
        _ids = MultiDocValues.GetNumericValues(_reader, "id");
    }

    public long Bytes => _directory.ListAll().Sum(_directory.FileLength);

    public static LuceneIndex Build(string path, IReadOnlyList<string> texts, float k1, float b)
    {
        var directory = new MMapDirectory(new DirectoryInfo(path));
        var analyzer = new EngramLikeAnalyzer();
        var similarity = new BM25Similarity(k1, b);
        var config = new IndexWriterConfig(LuceneVersion.LUCENE_48, analyzer)
        {
            Similarity = similarity,
            OpenMode = OpenMode.CREATE,
            RAMBufferSizeMB = 256,
        };
        using (var writer = new IndexWriter(directory, config))
        {
            var document = new Document();
            var content = new TextField(Field, string.Empty, Lucene.Net.Documents.Field.Store.NO);
            var id = new NumericDocValuesField("id", 0);
            document.Add(content);
            document.Add(id);
            for (var i = 0; i < texts.Count; i++)
            {
                content.SetStringValue(texts[i]);
                id.SetInt64Value(i);
                writer.AddDocument(document);
            }
            writer.ForceMerge(1);
            writer.Commit();
        }
        return new LuceneIndex(directory, analyzer, similarity);
    }

    /// <summary>Analyzes <paramref name="query"/>, runs it and writes the best document numbers to <paramref name="results"/>.</summary>
    public int Search(string query, Span<int> results)
    {
        var boolean = new BooleanQuery();
        using (var stream = _analyzer.GetTokenStream(Field, query))
        {
            var term = stream.AddAttribute<ICharTermAttribute>();
            stream.Reset();
            while (stream.IncrementToken())
            {
                boolean.Add(new TermQuery(new Term(Field, term.ToString())), Occur.SHOULD);
            }
            stream.End();
        }
        if (boolean.Clauses.Count == 0)
        {
            return 0;
        }
        var top = _searcher.Search(boolean, results.Length);
        var count = Math.Min(results.Length, top.ScoreDocs.Length);
        for (var i = 0; i < count; i++)
        {
            results[i] = (int)_ids.Get(top.ScoreDocs[i].Doc);
        }
        return count;
    }

    public void Dispose()
    {
        _reader.Dispose();
        _analyzer.Dispose();
        _directory.Dispose();
    }

    /// <summary>
    /// Engram's analysis from Lucene parts: runs of letters and digits (a <see cref="CharTokenizer"/> with
    /// Engram's character test), <see cref="LowerCaseFilter"/>, a <see cref="StopFilter"/> with Engram's
    /// stop list, and Engram's light stemmer in a token filter (Lucene has no stemmer with the same rules:
    /// EnglishMinimalStem only folds plurals, Porter and KStem do much more). Differences left: Lucene's
    /// tokenizer cuts tokens at 255 characters (Engram at 64), and it does not bigram CJK (this corpus is English).
    /// </summary>
    private sealed class EngramLikeAnalyzer : Analyzer
    {
        private static readonly CharArraySet Stop = new(LuceneVersion.LUCENE_48, StopWords.All, ignoreCase: false);

        protected override TokenStreamComponents CreateComponents(string fieldName, TextReader reader)
        {
            var tokenizer = new LetterOrDigitTokenizer(reader);
            TokenStream stream = new LowerCaseFilter(LuceneVersion.LUCENE_48, tokenizer);
            stream = new StopFilter(LuceneVersion.LUCENE_48, stream, Stop);
            stream = new LightStemFilter(stream);
            return new TokenStreamComponents(tokenizer, stream);
        }
    }

    private sealed class LetterOrDigitTokenizer(TextReader reader) : CharTokenizer(LuceneVersion.LUCENE_48, reader)
    {
        protected override bool IsTokenChar(int c) => c <= char.MaxValue && char.IsLetterOrDigit((char)c);
    }

    private sealed class LightStemFilter : TokenFilter
    {
        private readonly ICharTermAttribute _term;

        public LightStemFilter(TokenStream input)
            : base(input)
        {
            _term = AddAttribute<ICharTermAttribute>();
        }

        public override bool IncrementToken()
        {
            if (!m_input.IncrementToken())
            {
                return false;
            }
            var stemmed = LightStemmer.Stem(_term.Buffer.AsSpan(0, _term.Length));
            _term.SetLength(stemmed.Length);
            return true;
        }
    }
}
