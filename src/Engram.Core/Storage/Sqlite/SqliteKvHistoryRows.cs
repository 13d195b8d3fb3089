using System.Text;

namespace Engram.Core.Storage.Sqlite;

/// <summary>A key-value history row waiting to be inserted (the columns of <c>kv_history</c>).</summary>
internal readonly record struct KvHistoryRow(long Hid, string Tenant, string Key, long Seq, string Event, string Actor, long At, long Version,
    string? Json, long? ExpiresAtMs, long? PreviousHid);

/// <summary>
/// The history rows of one write item that changes many keys (a pipelined batch of SETs, a transaction), inserted
/// <see cref="RowsPerStatement"/> to a statement when the item ends instead of one statement per row: a statement run
/// has a fixed cost (reset, cursor open and seek from the root) that a row of a multi-row insert does not pay again
/// (bench/README.md, session 27). Rows wait only while the item runs, on the writer's thread: nothing in an item reads
/// <c>kv_history</c> back (the key states come from the write-behind), and a failed item discards them with its
/// transaction. Only rows whose id is known before the insert (the change's seq) can wait.
/// </summary>
internal sealed class SqliteKvHistoryRows
{
    public const int RowsPerStatement = 16;

    private const int Columns = 11;

    // Interned: the connection finds the cached statements of literal SQL by reference.
    private static readonly string InsertOne = string.Intern(InsertSql(1));
    private static readonly string InsertMany = string.Intern(InsertSql(RowsPerStatement));

    private readonly List<KvHistoryRow> _rows = [];

    /// <summary>Whether an item is collecting rows (<see cref="Collect"/>) rather than inserting each at once.</summary>
    public bool Collecting { get; private set; }

    /// <summary>Rows waiting (tests).</summary>
    public int Count => _rows.Count;

    /// <summary>Starts collecting; disposing the scope stops and drops whatever was not <see cref="Insert">inserted</see>.</summary>
    public Scope Collect()
    {
        Collecting = true;
        return new Scope(this);
    }

    public void Add(in KvHistoryRow row) => _rows.Add(row);

    /// <summary>Inserts the waiting rows, in the order they came, inside the running transaction.</summary>
    public void Insert(SqliteConnection c)
    {
        var i = 0;
        for (; _rows.Count - i >= RowsPerStatement; i += RowsPerStatement)
        {
            using var many = c.Prepare(InsertMany);
            for (var r = 0; r < RowsPerStatement; r++)
            {
                Bind(many, r * Columns, _rows[i + r]);
            }
            many.StepToEnd();
        }
        for (; i < _rows.Count; i++)
        {
            using var one = c.Prepare(InsertOne);
            Bind(one, 0, _rows[i]);
            one.StepToEnd();
        }
        _rows.Clear();
    }

    private static void Bind(SqliteStatement statement, int at, in KvHistoryRow row)
    {
        statement.Bind(at + 1, row.Hid);
        statement.Bind(at + 2, row.Tenant);
        statement.Bind(at + 3, row.Key);
        statement.Bind(at + 4, row.Seq);
        statement.Bind(at + 5, row.Event);
        statement.Bind(at + 6, row.Actor);
        statement.Bind(at + 7, row.At);
        statement.Bind(at + 8, row.Version);
        statement.Bind(at + 9, row.Json);
        statement.Bind(at + 10, row.ExpiresAtMs);
        statement.Bind(at + 11, row.PreviousHid);
    }

    private static string InsertSql(int rows)
    {
        var sql = new StringBuilder("INSERT INTO kv_history(hid, tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) VALUES ");
        for (var r = 0; r < rows; r++)
        {
            sql.Append(r == 0 ? "(" : ", (");
            for (var col = 1; col <= Columns; col++)
            {
                sql.Append(col == 1 ? "?" : ", ?").Append(r * Columns + col);
            }
            sql.Append(')');
        }
        return sql.ToString();
    }

    public readonly struct Scope(SqliteKvHistoryRows rows) : IDisposable
    {
        public void Dispose()
        {
            rows._rows.Clear();
            rows.Collecting = false;
        }
    }
}
