using System.Collections.Concurrent;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// A bounded pool of read connections. WAL lets every reader see a consistent snapshot while
/// the writer commits, so readers never wait for writers; the pool bounds how many native
/// connections (and their page caches) the process keeps.
/// </summary>
public sealed class SqliteConnectionPool : IDisposable
{
    private readonly string _path;
    private readonly ConcurrentBag<SqliteConnection> _idle = new();
    private readonly SemaphoreSlim _slots;
    private bool _disposed;

    public SqliteConnectionPool(string path, int maxConnections)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        _path = path;
        _slots = new SemaphoreSlim(maxConnections, maxConnections);
    }

    /// <summary>Runs <paramref name="read"/> on a pooled connection inside one read transaction (one snapshot).</summary>
    public async ValueTask<T> ReadAsync<T>(Func<SqliteConnection, T> read, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _slots.WaitAsync(ct).ConfigureAwait(false);
        SqliteConnection? connection = null;
        try
        {
            connection = _idle.TryTake(out var idle) ? idle : SqliteConnection.Open(_path, create: false);
            connection.ExecuteNonQuery("BEGIN");
            try
            {
                return read(connection);
            }
            finally
            {
                connection.ExecuteNonQuery("COMMIT");
            }
        }
        catch
        {
            // A connection that failed mid-read may hold a half-open transaction: drop it.
            connection?.Dispose();
            connection = null;
            throw;
        }
        finally
        {
            if (connection is not null)
            {
                _idle.Add(connection);
            }
            _slots.Release();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryTake(out var connection))
        {
            connection.Dispose();
        }
    }
}
