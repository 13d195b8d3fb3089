namespace Engram.Core.Storage.Sqlite;

/// <summary>An error code from SQLite with the message it gave and the statement that failed.</summary>
public sealed class SqliteException : StoreException
{
    public SqliteException(int resultCode, string message) : base(message) => ResultCode = resultCode;

    /// <summary>The primary SQLite result code (SQLITE_BUSY = 5, SQLITE_CONSTRAINT = 19, …).</summary>
    public int ResultCode { get; }

    public bool IsBusy => (ResultCode & 0xff) is 5 or 6; // SQLITE_BUSY, SQLITE_LOCKED
}
