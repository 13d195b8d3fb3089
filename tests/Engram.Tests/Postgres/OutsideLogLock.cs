using Engram.Core.Storage.Postgres;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// The database's log lock held by an outside transaction, as another instance's write would hold it: an instance's
/// logged writes then queue behind it, so a test can line up a group before the lock goes.
/// </summary>
internal static class OutsideLogLock
{
    /// <summary>Takes the lock; it is held until the returned transaction commits or is disposed.</summary>
    public static async Task<NpgsqlTransaction> HoldAsync(string url)
    {
        var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("SELECT seq FROM log_head FOR UPDATE", connection, transaction);
        await command.ExecuteScalarAsync();
        return transaction;
    }

    /// <summary>Waits (up to 10 s) until a session of the database waits on a lock: the first write queued behind this one.</summary>
    public static async Task WaitForWaiterAsync(string url)
    {
        for (var i = 0; i < 500; i++)
        {
            await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()", connection);
            if ((long)(await command.ExecuteScalarAsync())! > 0)
            {
                return;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("waited 10 s for a write to wait on the log lock");
    }
}
