using System.Diagnostics;
using SQLitePCL;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// One SQLite connection over the raw SQLitePCL API, with a cache of prepared statements.
/// Not thread-safe: a connection belongs to one caller at a time (the writer, or a reader
/// borrowed from <see cref="SqliteConnectionPool"/>).
/// </summary>
public sealed class SqliteConnection : IDisposable
{
    private const int MaxCachedStatements = 128;

    private static readonly object InitLock = new();
    private static bool _initialized;

    private readonly sqlite3 _db;
    private readonly Dictionary<string, SqliteStatement> _statements = new(StringComparer.Ordinal);
    /// <summary>
    /// The cached statements whose SQL is a literal of the code (an interned string), found by reference: no hash and
    /// compare of the whole SQL text per statement run, which was a visible part of a key-value write (bench/README.md,
    /// session 27). SQL built at run time is never added here, so this stays as small as the code's literals.
    /// </summary>
    private readonly Dictionary<string, SqliteStatement> _literals = new(ReferenceEqualityComparer.Instance);
    private bool _disposed;

    private SqliteConnection(sqlite3 db, string path)
    {
        _db = db;
        Path = path;
    }

    public string Path { get; }

    internal sqlite3 Handle => _db;

    /// <summary>
    /// Opens (creating when asked) the database at <paramref name="path"/> and sets the pragmas
    /// every Engram connection uses: WAL, synchronous=FULL (a commit is on disk before it returns;
    /// the store's writer alone switches to NORMAL and syncs through SqliteWalSync),
    /// foreign keys, and a busy timeout so that another process holding the write lock makes us
    /// wait instead of failing with "database is locked".
    /// </summary>
    public static SqliteConnection Open(string path, bool readOnly = false, bool create = true, int busyTimeoutMs = 30_000)
    {
        EnsureInitialized();
        var flags = readOnly
            ? raw.SQLITE_OPEN_READONLY
            : raw.SQLITE_OPEN_READWRITE | (create ? raw.SQLITE_OPEN_CREATE : 0);
        flags |= raw.SQLITE_OPEN_NOMUTEX;
        var rc = raw.sqlite3_open_v2(path, out var db, flags, null);
        if (rc != raw.SQLITE_OK)
        {
            var message = db is null ? raw.sqlite3_errstr(rc).utf8_to_string() : raw.sqlite3_errmsg(db).utf8_to_string();
            db?.Dispose();
            throw new SqliteException(rc, $"cannot open SQLite database '{path}': {message}");
        }

        var connection = new SqliteConnection(db, path);
        try
        {
            raw.sqlite3_busy_timeout(db, busyTimeoutMs);
            raw.sqlite3_extended_result_codes(db, 1);
            if (!readOnly)
            {
                connection.Execute("PRAGMA journal_mode=WAL");
            }
            connection.Execute("PRAGMA synchronous=FULL");
            connection.Execute("PRAGMA foreign_keys=ON");
            connection.Execute("PRAGMA temp_store=MEMORY");
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return connection;
    }

    /// <summary>Opens (creating) a database with none of the pragmas <see cref="Open"/> sets: the target of a backup copy.</summary>
    internal static SqliteConnection OpenPlain(string path)
    {
        EnsureInitialized();
        var rc = raw.sqlite3_open_v2(path, out var db, raw.SQLITE_OPEN_READWRITE | raw.SQLITE_OPEN_CREATE | raw.SQLITE_OPEN_NOMUTEX, null);
        if (rc != raw.SQLITE_OK)
        {
            var message = db is null ? raw.sqlite3_errstr(rc).utf8_to_string() : raw.sqlite3_errmsg(db).utf8_to_string();
            db?.Dispose();
            throw new SqliteException(rc, $"cannot open SQLite database '{path}': {message}");
        }
        raw.sqlite3_extended_result_codes(db, 1);
        return new SqliteConnection(db, path);
    }

    public static string Version
    {
        get
        {
            EnsureInitialized();
            return raw.sqlite3_libversion().utf8_to_string();
        }
    }

    /// <summary>Whether SQLite still keeps memory statistics (its build refused to turn them off).</summary>
    private static bool _memoryStatistics;

    internal static bool MemoryStatistics
    {
        get
        {
            EnsureInitialized();
            return _memoryStatistics;
        }
    }

    private static void EnsureInitialized()
    {
        if (_initialized)
        {
            return;
        }
        lock (InitLock)
        {
            if (!_initialized)
            {
                Batteries_V2.Init();
                // No memory statistics: with them on, every SQLite allocation and free takes one process-wide mutex
                // (nothing here reads sqlite3_memory_used or sets a heap limit). A setting only SQLite's start-up takes.
                raw.sqlite3_shutdown();
                var rc = raw.sqlite3_config(raw.SQLITE_CONFIG_MEMSTATUS, 0);
                raw.sqlite3_initialize();
                _memoryStatistics = rc != raw.SQLITE_OK;
                _initialized = true;
            }
        }
    }

    /// <summary>Runs one or more statements that take no parameters and return no rows.</summary>
    public void Execute(string sql)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var rc = raw.sqlite3_exec(_db, sql, out var error);
        if (rc != raw.SQLITE_OK)
        {
            throw new SqliteException(rc, $"{error ?? ErrorMessage} (while running: {Truncate(sql)})");
        }
    }

    /// <summary>
    /// Returns a prepared statement for <paramref name="sql"/>, reset and with cleared bindings.
    /// Statements are cached per connection; dispose the returned lease to reset it for reuse.
    /// </summary>
    public SqliteStatement Prepare(string sql)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_literals.TryGetValue(sql, out var cached) || _statements.TryGetValue(sql, out cached))
        {
            cached.ResetForReuse();
            return cached;
        }

        var rc = raw.sqlite3_prepare_v3(_db, sql, raw.SQLITE_PREPARE_PERSISTENT, out var stmt);
        if (rc != raw.SQLITE_OK)
        {
            stmt?.Dispose();
            throw new SqliteException(rc, $"{ErrorMessage} (while preparing: {Truncate(sql)})");
        }
        if (_statements.Count >= MaxCachedStatements)
        {
            // Dynamic filter SQL can produce many shapes; keep the cache bounded.
            foreach (var statement in _statements.Values)
            {
                statement.Close();
            }
            _statements.Clear();
            _literals.Clear();
        }
        var prepared = new SqliteStatement(this, stmt, sql);
        _statements[sql] = prepared;
        if (ReferenceEquals(string.IsInterned(sql), sql))
        {
            _literals[sql] = prepared;
        }
        return prepared;
    }

    /// <summary>Runs a statement with parameters and returns the number of rows it changed.</summary>
    public int ExecuteNonQuery(string sql, params ReadOnlySpan<object?> parameters)
    {
        using var statement = Prepare(sql);
        statement.BindAll(parameters);
        statement.StepToEnd();
        return raw.sqlite3_changes(_db);
    }

    /// <summary>Runs a query and returns the first column of the first row, or null when there is no row.</summary>
    public long? ScalarInt64(string sql, params ReadOnlySpan<object?> parameters)
    {
        using var statement = Prepare(sql);
        statement.BindAll(parameters);
        return statement.Step() && !statement.IsNull(0) ? statement.GetInt64(0) : null;
    }

    public string? ScalarText(string sql, params ReadOnlySpan<object?> parameters)
    {
        using var statement = Prepare(sql);
        statement.BindAll(parameters);
        return statement.Step() ? statement.GetTextOrNull(0) : null;
    }

    public long LastInsertRowId => raw.sqlite3_last_insert_rowid(_db);

    public int Changes => raw.sqlite3_changes(_db);

    /// <summary>Rows changed by every completed statement since the connection opened (a failed statement adds none).</summary>
    public long TotalChanges => raw.sqlite3_total_changes(_db);

    /// <summary>True inside an explicit transaction; SQLite ends it by itself on some errors (a full disk, for one).</summary>
    public bool InTransaction => raw.sqlite3_get_autocommit(_db) == 0;

    internal string ErrorMessage => raw.sqlite3_errmsg(_db).utf8_to_string();

    internal void ThrowError(int rc, string sql) =>
        throw new SqliteException(rc, $"{ErrorMessage} (while running: {Truncate(sql)})");

    private static string Truncate(string sql) => sql.Length <= 200 ? sql : sql[..200] + "…";

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var statement in _statements.Values)
        {
            statement.Close();
        }
        _statements.Clear();
        _literals.Clear();
        var rc = raw.sqlite3_close_v2(_db);
        Debug.Assert(rc == raw.SQLITE_OK, "close_v2 defers until statements are finalized");
        _db.Dispose();
    }
}
