using System.Text.Json;

namespace Engram.Core.Storage.Transfer;

/// <summary>
/// One read-only, consistent view of a store (a SQLite read transaction, a PostgreSQL REPEATABLE READ
/// READ ONLY transaction) that runs the export's statements, which are the same SQL on both backends.
/// Rows are streamed: a statement's result is read row by row, never held whole.
/// </summary>
public interface ISnapshot : IAsyncDisposable
{
    /// <summary>The store's schema version in the snapshot.</summary>
    int SchemaVersion { get; }

    /// <summary>The change log's newest sequence number in the snapshot.</summary>
    long LastSeq { get; }

    /// <summary>How the backend names the column that orders graph entities by creation (SQLite's rowid, PostgreSQL's eid).</summary>
    string EntityOrder { get; }

    /// <summary>
    /// What follows a text column to compare it by code point (the byte order of UTF-8): nothing on SQLite, whose default
    /// collation is BINARY; <c>COLLATE "C"</c> on PostgreSQL, whose tenant columns mostly take the database's collation.
    /// </summary>
    string CodePointOrder { get; }

    /// <summary>Runs <paramref name="sql"/>, where <c>?1</c>, <c>?2</c>… (if present) are the <paramref name="parameters"/> in order.</summary>
    ValueTask<ISnapshotRows> QueryAsync(string sql, IReadOnlyList<string> parameters, CancellationToken ct);
}

/// <summary>A statement's rows, read forward; the getters read the current row by column position.</summary>
public interface ISnapshotRows : IAsyncDisposable
{
    ValueTask<bool> ReadAsync(CancellationToken ct);

    bool IsNull(int column);

    string Text(int column);

    long Int64(int column);

    double Double(int column);

    byte[] Bytes(int column);

    /// <summary>Writes a text column that holds JSON as the raw value of the current property.</summary>
    void WriteRawJson(Utf8JsonWriter writer, int column);
}
