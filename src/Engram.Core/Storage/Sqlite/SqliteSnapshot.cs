using System.Text.Json;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// A read transaction on a connection of its own: the first read fixes the snapshot every later
/// statement sees, while writers go on in WAL mode.
/// </summary>
internal sealed class SqliteSnapshot : ISnapshot
{
    private readonly SqliteConnection _connection;

    public SqliteSnapshot(string path)
    {
        _connection = SqliteConnection.Open(path, readOnly: true, create: false);
        try
        {
            _connection.Execute("BEGIN");
            SchemaVersion = SqliteSchema.CurrentVersion(_connection);
            LastSeq = _connection.ScalarInt64(SqliteMemoryStore.NewestSeqSql) ?? 0;
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
    }

    public int SchemaVersion { get; }

    public long LastSeq { get; }

    public string EntityOrder => "rowid";

    public string CodePointOrder => "";

    public ValueTask<ISnapshotRows> QueryAsync(string sql, IReadOnlyList<string> parameters, CancellationToken ct)
    {
        var statement = _connection.Prepare(sql);
        for (var i = 1; i <= statement.ParameterCount; i++)
        {
            statement.Bind(i, parameters[i - 1]);
        }
        return ValueTask.FromResult<ISnapshotRows>(new Rows(statement));
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            _connection.Execute("COMMIT");
        }
        catch (SqliteException)
        {
            // The read transaction ends with the connection anyway.
        }
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Rows(SqliteStatement statement) : ISnapshotRows
    {
        public ValueTask<bool> ReadAsync(CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            return ValueTask.FromResult(statement.Step());
        }

        public bool IsNull(int column) => statement.IsNull(column);

        public string Text(int column) => statement.GetText(column);

        public long Int64(int column) => statement.GetInt64(column);

        public double Double(int column) => statement.GetDouble(column);

        public byte[] Bytes(int column) => statement.GetBytes(column).ToArray();

        public void WriteRawJson(Utf8JsonWriter writer, int column) => writer.WriteRawValue(statement.GetBytes(column), skipInputValidation: true);

        public ValueTask DisposeAsync()
        {
            statement.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
