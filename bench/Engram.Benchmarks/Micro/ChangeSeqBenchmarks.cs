using BenchmarkDotNet.Attributes;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Micro;

/// <summary>
/// What a key-value write pays for its change seq on SQLite (SqliteMemoryStore.Changes.cs), inside one open transaction
/// as on the writer: the change-log row it used to insert (AUTOINCREMENT), against advancing the sequence itself, with
/// UPDATE … RETURNING (which builds an ephemeral table) or an UPDATE and a SELECT (kept).
/// </summary>
public class ChangeSeqBenchmarks
{
    private string _folder = "";
    private SqliteConnection _c = null!;

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("engram-seq-").FullName;
        _c = SqliteConnection.Open(Path.Combine(_folder, "seq.db"));
        _c.Execute("""
            CREATE TABLE changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, entity TEXT NOT NULL,
                entity_id TEXT NOT NULL, op TEXT NOT NULL, at INTEGER NOT NULL);
            INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES ('default', 'kv', 'k', 'upsert', 0);
            BEGIN IMMEDIATE;
            """);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _c.Execute("COMMIT");
        _c.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public long ChangeLogRow()
    {
        _c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            "default", "kv", "key:__rand_int__", "upsert", 1_700_000_000_000L);
        return _c.LastInsertRowId;
    }

    [Benchmark]
    public long? UpdateReturning() => _c.ScalarInt64("UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = 'changelog' RETURNING seq", 1);

    [Benchmark]
    public long? UpdateThenSelect()
    {
        _c.ExecuteNonQuery("UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = 'changelog'", 1);
        return _c.ScalarInt64("SELECT seq FROM sqlite_sequence WHERE name = 'changelog'");
    }
}
