using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using SQLitePCL;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// A cached prepared statement. Use it in a <c>using</c> block: disposing resets it so the
/// connection can hand it out again; the native statement is finalized with the connection.
/// </summary>
public sealed class SqliteStatement : IDisposable, IStoreRow
{
    private readonly SqliteConnection _connection;
    private readonly sqlite3_stmt _stmt;
    /// <summary>The native statement, for <see cref="SqliteNative"/>: valid until <see cref="Close"/>, which only the connection calls when it closes.</summary>
    private readonly IntPtr _handle;
    private readonly string _sql;

    internal SqliteStatement(SqliteConnection connection, sqlite3_stmt stmt, string sql)
    {
        _connection = connection;
        _stmt = stmt;
        _handle = stmt.DangerousGetHandle();
        _sql = sql;
    }

    public int ParameterCount => SqliteNative.BindParameterCount(_handle);

    public void Bind(int index, object? value)
    {
        var rc = value switch
        {
            null => SqliteNative.BindNull(_handle, index),
            string s => BindText(index, s),
            long l => SqliteNative.BindInt64(_handle, index, l),
            int i => SqliteNative.BindInt64(_handle, index, i),
            double d => SqliteNative.BindDouble(_handle, index, d),
            float f => SqliteNative.BindDouble(_handle, index, f),
            bool b => SqliteNative.BindInt64(_handle, index, b ? 1 : 0),
            byte[] bytes => BindBlob(index, bytes),
            _ => throw new ArgumentException($"cannot bind a {value.GetType().Name} to a SQLite parameter", nameof(value)),
        };
        if (rc != raw.SQLITE_OK)
        {
            _connection.ThrowError(rc, _sql);
        }
    }

    /// <summary>Binds an integer without boxing it (hot writes).</summary>
    public void Bind(int index, long value) => Check(SqliteNative.BindInt64(_handle, index, value));

    /// <summary>Binds an integer or NULL without boxing it (hot writes).</summary>
    public void Bind(int index, long? value) => Check(value is { } v ? SqliteNative.BindInt64(_handle, index, v) : SqliteNative.BindNull(_handle, index));

    /// <summary>Binds text or NULL (hot writes).</summary>
    public void Bind(int index, string? value) => Check(value is null ? SqliteNative.BindNull(_handle, index) : BindText(index, value));

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            _connection.ThrowError(rc, _sql);
        }
    }

    /// <summary>
    /// Binds text as UTF-8 encoded into a stack or pooled buffer (SQLite copies it): the string
    /// overload of SQLitePCLRaw allocates a fresh byte array per call, several per key-value write.
    /// The stack buffer is not zeroed first (only the bytes written are read): zeroing 512 bytes per bind was a
    /// visible part of the writer's time (bench/README.md, session 27).
    /// </summary>
    [SkipLocalsInit]
    private int BindText(int index, string text)
    {
        const int StackLimit = 512;
        if (text.Length <= StackLimit / 3)
        {
            Span<byte> buffer = stackalloc byte[StackLimit];
            return BindUtf8(index, buffer[..Encoding.UTF8.GetBytes(text, buffer)]);
        }
        var rented = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetByteCount(text));
        try
        {
            return BindUtf8(index, rented.AsSpan(0, Encoding.UTF8.GetBytes(text, rented)));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Binds UTF-8 text, copied by SQLite. An empty text is bound from a non-null pointer: a null one would bind SQL NULL.</summary>
    private unsafe int BindUtf8(int index, ReadOnlySpan<byte> utf8)
    {
        byte empty = 0;
        fixed (byte* text = utf8)
        {
            return SqliteNative.BindText(_handle, index, text is null ? &empty : text, utf8.Length, SqliteNative.Transient);
        }
    }

    private unsafe int BindBlob(int index, byte[] bytes)
    {
        byte empty = 0;
        fixed (byte* data = bytes)
        {
            // A zero-length blob, not NULL (SQLite binds NULL for a null pointer).
            return SqliteNative.BindBlob(_handle, index, data is null ? &empty : data, bytes.Length, SqliteNative.Transient);
        }
    }

    public void BindAll(ReadOnlySpan<object?> values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            Bind(i + 1, values[i]);
        }
    }

    /// <summary>Advances to the next row; false when the statement is done.</summary>
    public bool Step()
    {
        var rc = SqliteNative.Step(_handle);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }
        if (rc == raw.SQLITE_DONE)
        {
            return false;
        }
        _connection.ThrowError(rc, _sql);
        return false;
    }

    public void StepToEnd()
    {
        while (Step())
        {
        }
    }

    public bool IsNull(int column) => SqliteNative.ColumnType(_handle, column) == raw.SQLITE_NULL;

    public long GetInt64(int column) => SqliteNative.ColumnInt64(_handle, column);

    public long? GetInt64OrNull(int column) => IsNull(column) ? null : GetInt64(column);

    public double GetDouble(int column) => SqliteNative.ColumnDouble(_handle, column);

    public double? GetDoubleOrNull(int column) => IsNull(column) ? null : GetDouble(column);

    public string GetText(int column) => GetTextOrNull(column) ?? string.Empty;

    public string? GetTextOrNull(int column)
    {
        if (IsNull(column))
        {
            return null;
        }
        return Encoding.UTF8.GetString(SqliteNative.ColumnSpan(_handle, column));
    }

    /// <summary>The column's bytes, valid until the next Step or Reset.</summary>
    public ReadOnlySpan<byte> GetBytes(int column) => SqliteNative.ColumnSpan(_handle, column);

    /// <summary>A column holding a JSON array of strings, read from its UTF-8 bytes without a string in between.</summary>
    public string[] GetStringArray(int column) => JsonSerializer.Deserialize<string[]>(GetBytes(column)) ?? [];

    /// <summary>A column holding a JSON document, parsed straight from its UTF-8 bytes.</summary>
    public JsonElement GetJson(int column)
    {
        var reader = new Utf8JsonReader(GetBytes(column));
        return JsonElement.ParseValue(ref reader);
    }

    /// <summary>Rewinds the statement so it can run again with new bindings.</summary>
    public void Reset() => SqliteNative.Reset(_handle);

    internal void ResetForReuse()
    {
        SqliteNative.Reset(_handle);
        SqliteNative.ClearBindings(_handle);
    }

    internal void Close() => _stmt.Dispose();

    public void Dispose()
    {
        // Reset so that a read statement releases its snapshot; bindings stay until the next use.
        SqliteNative.Reset(_handle);
    }
}
