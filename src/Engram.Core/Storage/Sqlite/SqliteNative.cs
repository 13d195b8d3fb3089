using System.Runtime.InteropServices;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Direct calls into the same e_sqlite3 library SQLitePCLRaw loads, on a statement's raw pointer, for the calls
/// every statement makes per row (bind, step, reset, column reads). SQLitePCLRaw's versions take the statement as a
/// SafeHandle, and the marshalling adds a reference count increment and decrement per call: about 7% of the CPU of a
/// key-value SET (two inserts of ~10 parameters, bench/README.md). Opening, preparing, errors and closing still go
/// through SQLitePCLRaw, which owns the handles; a pointer is only used while its <see cref="SqliteStatement"/> lives.
/// </summary>
internal static unsafe partial class SqliteNative
{
    private const string Library = "e_sqlite3";

    /// <summary>SQLITE_TRANSIENT: SQLite copies the bytes before the bind returns.</summary>
    public static readonly IntPtr Transient = new(-1);

    [LibraryImport(Library, EntryPoint = "sqlite3_bind_int64")]
    public static partial int BindInt64(IntPtr stmt, int index, long value);

    [LibraryImport(Library, EntryPoint = "sqlite3_bind_double")]
    public static partial int BindDouble(IntPtr stmt, int index, double value);

    [LibraryImport(Library, EntryPoint = "sqlite3_bind_null")]
    public static partial int BindNull(IntPtr stmt, int index);

    [LibraryImport(Library, EntryPoint = "sqlite3_bind_text")]
    public static partial int BindText(IntPtr stmt, int index, byte* text, int length, IntPtr destructor);

    [LibraryImport(Library, EntryPoint = "sqlite3_bind_blob")]
    public static partial int BindBlob(IntPtr stmt, int index, byte* data, int length, IntPtr destructor);

    [LibraryImport(Library, EntryPoint = "sqlite3_bind_parameter_count")]
    public static partial int BindParameterCount(IntPtr stmt);

    [LibraryImport(Library, EntryPoint = "sqlite3_step")]
    public static partial int Step(IntPtr stmt);

    [LibraryImport(Library, EntryPoint = "sqlite3_reset")]
    public static partial int Reset(IntPtr stmt);

    [LibraryImport(Library, EntryPoint = "sqlite3_clear_bindings")]
    public static partial int ClearBindings(IntPtr stmt);

    [LibraryImport(Library, EntryPoint = "sqlite3_column_type")]
    public static partial int ColumnType(IntPtr stmt, int column);

    [LibraryImport(Library, EntryPoint = "sqlite3_column_int64")]
    public static partial long ColumnInt64(IntPtr stmt, int column);

    [LibraryImport(Library, EntryPoint = "sqlite3_column_double")]
    public static partial double ColumnDouble(IntPtr stmt, int column);

    [LibraryImport(Library, EntryPoint = "sqlite3_column_blob")]
    public static partial byte* ColumnBlob(IntPtr stmt, int column);

    [LibraryImport(Library, EntryPoint = "sqlite3_column_bytes")]
    public static partial int ColumnBytes(IntPtr stmt, int column);

    /// <summary>The column's value as bytes (text or blob), valid until the next step, reset or column conversion.</summary>
    public static ReadOnlySpan<byte> ColumnSpan(IntPtr stmt, int column)
    {
        // sqlite3_column_blob first, then _bytes: the order SQLite documents for a stable pointer and length.
        var data = ColumnBlob(stmt, column);
        var length = ColumnBytes(stmt, column);
        return data is null ? [] : new ReadOnlySpan<byte>(data, length);
    }
}
