using System.Text.Json;
using Engram.Core.Storage.Transfer;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// One REPEATABLE READ, READ ONLY transaction on a connection of its own: every statement of an
/// export sees the database as of its first one, while other instances go on writing. Rows stream
/// from the server as they are read (Npgsql does not buffer a whole result).
/// </summary>
internal sealed class PostgresSnapshot : ISnapshot
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;

    private PostgresSnapshot(NpgsqlConnection connection, NpgsqlTransaction transaction, int schemaVersion, long lastSeq)
    {
        _connection = connection;
        _transaction = transaction;
        SchemaVersion = schemaVersion;
        LastSeq = lastSeq;
    }

    public static async Task<PostgresSnapshot> OpenAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        var connection = await db.OpenConnectionAsync(ct).ConfigureAwait(false);
        try
        {
            var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
            await PostgresMemoryStore.ExecuteAsync(connection, "SET TRANSACTION READ ONLY", ct).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("SELECT (SELECT coalesce(max(version), 0) FROM schema_version), (SELECT seq FROM log_head)", connection);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return new PostgresSnapshot(connection, transaction, reader.GetInt32(0), reader.GetInt64(1));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public int SchemaVersion { get; }

    public long LastSeq { get; }

    public string EntityOrder => "eid";

    public string CodePointOrder => " COLLATE \"C\"";

    public async ValueTask<ISnapshotRows> QueryAsync(string sql, IReadOnlyList<string> parameters, CancellationToken ct)
    {
        var command = new NpgsqlCommand(sql, _connection, _transaction);
        // Bind as many as the statement names (PostgreSQL refuses a parameter it does not use).
        for (var i = 1; i <= parameters.Count && sql.Contains($"?{i}", StringComparison.Ordinal); i++)
        {
            command.CommandText = command.CommandText.Replace($"?{i}", $"${i}", StringComparison.Ordinal);
            command.Text(parameters[i - 1]);
        }
        try
        {
            return new Rows(command, await command.ExecuteReaderAsync(ct).ConfigureAwait(false));
        }
        catch (NpgsqlException ex)
        {
            await command.DisposeAsync().ConfigureAwait(false);
            throw new StoreException($"the PostgreSQL export failed: {ex.Message}", ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class Rows(NpgsqlCommand command, NpgsqlDataReader reader) : ISnapshotRows
    {
        public async ValueTask<bool> ReadAsync(CancellationToken ct) => await reader.ReadAsync(ct).ConfigureAwait(false);

        public bool IsNull(int column) => reader.IsDBNull(column);

        public string Text(int column) => reader.GetString(column);

        public long Int64(int column) => reader.GetInt64(column);

        public double Double(int column) => reader.GetDouble(column);

        public byte[] Bytes(int column) => reader.GetFieldValue<byte[]>(column);

        public void WriteRawJson(Utf8JsonWriter writer, int column) => writer.WriteRawValue(reader.GetString(column), skipInputValidation: true);

        public async ValueTask DisposeAsync()
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            await command.DisposeAsync().ConfigureAwait(false);
        }
    }
}
