using Npgsql;
using NpgsqlTypes;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// One process at a time for a periodic job, across every instance on the database: a session-level
/// advisory lock on a connection of its own, held for the run. Closing that connection ends the lock,
/// and so does the death of the process holding it (the server ends the session), so a killed instance
/// never leaves a job locked.
/// </summary>
public sealed partial class PostgresMemoryStore
{
    // The advisory-lock key space is the database's, shared with anything else using it: Engram's locks
    // take one class (the first key, "Engr") and a job's name hashed (the second).
    private const int JobLockClass = 0x456E6772;

    public async Task<IAsyncDisposable?> TryLockJobAsync(string job, CancellationToken ct = default)
    {
        NpgsqlConnection? connection = null;
        try
        {
            connection = await _sessions.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock($1, $2)", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = JobLockClass, NpgsqlDbType = NpgsqlDbType.Integer });
            command.Parameters.Add(new NpgsqlParameter { Value = JobKey(job), NpgsqlDbType = NpgsqlDbType.Integer });
            if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is not true)
            {
                return null;
            }
            var held = new HeldJobLock(connection, JobKey(job));
            connection = null;
            return held;
        }
        catch (NpgsqlException ex)
        {
            throw new StoreException($"the PostgreSQL store failed: {ex.Message}", ex);
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>FNV-1a of the name: the same number in every process (string.GetHashCode differs per process).</summary>
    internal static int JobKey(string job)
    {
        var hash = 2166136261u;
        foreach (var ch in job)
        {
            hash = (hash ^ ch) * 16777619u;
        }
        return unchecked((int)hash);
    }

    /// <summary>The lock's session: closing it (unpooled) ends the session and with it the lock.</summary>
    private sealed class HeldJobLock(NpgsqlConnection connection, int key) : IHeldJobLock
    {
        /// <summary>The session still answers: a session-level advisory lock lasts as long as its session.</summary>
        public async Task<bool> IsHeldAsync(CancellationToken ct = default)
        {
            try
            {
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is 1;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or IOException or TimeoutException)
            {
                return false;
            }
        }

        /// <summary>
        /// Unlocks first, then closes. Closing alone would free the lock too, but only once the server has
        /// ended the session, after the close has returned: another instance asking right after a run could
        /// still find the job taken. A session that is already gone has nothing left to unlock.
        /// </summary>
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var command = new NpgsqlCommand("SELECT pg_advisory_unlock($1, $2)", connection);
                command.Parameters.Add(new NpgsqlParameter { Value = JobLockClass, NpgsqlDbType = NpgsqlDbType.Integer });
                command.Parameters.Add(new NpgsqlParameter { Value = key, NpgsqlDbType = NpgsqlDbType.Integer });
                command.CommandTimeout = 5;
                await command.ExecuteScalarAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or IOException or TimeoutException)
            {
                // The session died (the lock went with it) or the server is unreachable (closing ends it).
            }
            finally
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
