using System.Buffers;
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
    private readonly string _sql;

    internal SqliteStatement(SqliteConnection connection, sqlite3_stmt stmt, string sql)
    {
        _connection = connection;
        _stmt = stmt;
        _sql = sql;
    }

    public int ParameterCount => raw.sqlite3_bind_parameter_count(_stmt);

    public void Bind(int index, object? value)
    {
        var rc = value switch
        {
            null => raw.sqlite3_bind_null(_stmt, index),
            string s => BindText(index, s),
            long l => raw.sqlite3_bind_int64(_stmt, index, l),
            int i => raw.sqlite3_bind_int64(_stmt, index, i),
            double d => raw.sqlite3_bind_double(_stmt, index, d),
            float f => raw.sqlite3_bind_double(_stmt, index, f),
            bool b => raw.sqlite3_bind_int64(_stmt, index, b ? 1 : 0),
            byte[] bytes => raw.sqlite3_bind_blob(_stmt, index, bytes),
            _ => throw new ArgumentException($"cannot bind a {value.GetType().Name} to a SQLite parameter", nameof(value)),
        };
        if (rc != raw.SQLITE_OK)
        {
            _connection.ThrowError(rc, _sql);
        }
    }

    /// <summary>
    /// Binds text as UTF-8 encoded into a stack or pooled buffer (SQLite copies it): the string
    /// overload of SQLitePCLRaw allocates a fresh byte array per call, several per key-value write.
    /// </summary>
    private int BindText(int index, string text)
    {
        const int StackLimit = 512;
        if (text.Length == 0)
        {
            return raw.sqlite3_bind_text(_stmt, index, text); // an empty span would pin as NULL and bind SQL NULL
        }
        if (text.Length <= StackLimit / 3)
        {
            Span<byte> buffer = stackalloc byte[StackLimit];
            var length = Encoding.UTF8.GetBytes(text, buffer);
            return raw.sqlite3_bind_text(_stmt, index, buffer[..length]);
        }
        var rented = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetByteCount(text));
        try
        {
            var length = Encoding.UTF8.GetBytes(text, rented);
            return raw.sqlite3_bind_text(_stmt, index, rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
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
        var rc = raw.sqlite3_step(_stmt);
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

    public bool IsNull(int column) => raw.sqlite3_column_type(_stmt, column) == raw.SQLITE_NULL;

    public long GetInt64(int column) => raw.sqlite3_column_int64(_stmt, column);

    public long? GetInt64OrNull(int column) => IsNull(column) ? null : GetInt64(column);

    public double GetDouble(int column) => raw.sqlite3_column_double(_stmt, column);

    public double? GetDoubleOrNull(int column) => IsNull(column) ? null : GetDouble(column);

    public string GetText(int column) => GetTextOrNull(column) ?? string.Empty;

    public string? GetTextOrNull(int column)
    {
        if (IsNull(column))
        {
            return null;
        }
        var bytes = raw.sqlite3_column_blob(_stmt, column);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>The column's bytes, valid until the next Step or Reset.</summary>
    public ReadOnlySpan<byte> GetBytes(int column) => raw.sqlite3_column_blob(_stmt, column);

    /// <summary>A column holding a JSON array of strings, read from its UTF-8 bytes without a string in between.</summary>
    public string[] GetStringArray(int column) => JsonSerializer.Deserialize<string[]>(GetBytes(column)) ?? [];

    /// <summary>A column holding a JSON document, parsed straight from its UTF-8 bytes.</summary>
    public JsonElement GetJson(int column)
    {
        var reader = new Utf8JsonReader(GetBytes(column));
        return JsonElement.ParseValue(ref reader);
    }

    /// <summary>Rewinds the statement so it can run again with new bindings.</summary>
    public void Reset() => raw.sqlite3_reset(_stmt);

    internal void ResetForReuse()
    {
        raw.sqlite3_reset(_stmt);
        raw.sqlite3_clear_bindings(_stmt);
    }

    internal void Close() => _stmt.Dispose();

    public void Dispose()
    {
        // Reset so that a read statement releases its snapshot; bindings stay until the next use.
        raw.sqlite3_reset(_stmt);
    }
}
