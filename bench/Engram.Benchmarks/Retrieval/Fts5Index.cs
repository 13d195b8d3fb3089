using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// The baseline: an SQLite FTS5 table in a temporary file, through Engram's own SQLite wrapper, with
/// the document number as rowid, ranked by FTS5's built-in <c>bm25()</c> (k1 1.2, b 0.75). The page
/// cache is made large enough to hold the whole index, so FTS5 runs from memory as Engram's index does.
/// </summary>
public sealed class Fts5Index : IDisposable
{
    private const string Query = "SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY bm25(docs) LIMIT ?2";

    private readonly SqliteConnection _db;

    private Fts5Index(SqliteConnection db, string tokenizer)
    {
        _db = db;
        Tokenizer = tokenizer;
    }

    /// <summary>The FTS5 tokenize option, e.g. <c>porter unicode61</c>.</summary>
    public string Tokenizer { get; }

    public static Fts5Index Create(string path, string tokenizer)
    {
        var db = SqliteConnection.Open(path);
        try
        {
            // A throwaway index: durability would only measure the disk.
            db.Execute("PRAGMA synchronous=OFF; PRAGMA cache_size=-524288; PRAGMA mmap_size=1073741824;");
            db.Execute($"CREATE VIRTUAL TABLE docs USING fts5(content, tokenize='{tokenizer}')");
            return new Fts5Index(db, tokenizer);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Inserts document i as rowid i in one transaction, then merges the segments into one (FTS5's best case for queries).</summary>
    public void AddAll(IReadOnlyList<string> texts)
    {
        _db.Execute("BEGIN");
        for (var i = 0; i < texts.Count; i++)
        {
            _db.ExecuteNonQuery("INSERT INTO docs(rowid, content) VALUES (?1, ?2)", (long)i, texts[i]);
        }
        _db.Execute("COMMIT");
        _db.Execute("INSERT INTO docs(docs) VALUES ('optimize')");
    }

    /// <summary>OR of the quoted terms (quoting keeps a word like "near" or "not" from being read as FTS syntax).</summary>
    public static string MatchExpression(IEnumerable<string> words) =>
        string.Join(" OR ", words.Select(w => "\"" + w.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));

    /// <summary>Writes the best documents' numbers to <paramref name="results"/> and returns how many.</summary>
    public int Search(string match, Span<int> results)
    {
        using var statement = _db.Prepare(Query);
        statement.Bind(1, match);
        statement.Bind(2, (long)results.Length);
        var count = 0;
        while (count < results.Length && statement.Step())
        {
            results[count++] = (int)statement.GetInt64(0);
        }
        return count;
    }

    public void Dispose() => _db.Dispose();
}
