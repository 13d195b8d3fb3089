using System.Globalization;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// LISTEN/NOTIFY for the index followers of every instance on the database. A transaction that appended
/// to the change log sends one notification with the newest seq; PostgreSQL delivers it only when (and
/// if) the transaction commits, and in commit order, so a follower woken by it finds the entries there.
/// </summary>
public sealed partial class PostgresMemoryStore
{
    /// <summary>The channel the writers notify on; per database, as LISTEN/NOTIFY are.</summary>
    public const string ChangeChannel = "engram_changes";

    private static readonly TimeSpan ListenerFirstRetry = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan ListenerMaxRetry = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Moves log_head to the transaction's last seq (<see cref="NextSeq"/>) and notifies, when the transaction appended to
    /// the log: a rejected duplicate or a failed If-Match moves nothing and wakes nobody. One update and one notification
    /// per transaction, however many entries it appended (a batch of 1,000 is one wake-up).
    /// </summary>
    private static async Task MoveHeadAndNotifyAsync(NpgsqlConnection c)
    {
        await using var command = new NpgsqlCommand(
            "WITH moved AS (UPDATE log_head SET seq = current_setting('engram.log_seq')::bigint WHERE seq <> current_setting('engram.log_seq')::bigint RETURNING seq) " +
            $"SELECT pg_notify('{ChangeChannel}', seq::text) FROM moved", c);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public async Task ListenAsync(ChangeSignal signal, CancellationToken ct)
    {
        var retry = ListenerFirstRetry;
        while (!ct.IsCancellationRequested && !_disposed)
        {
            try
            {
                await using var connection = await _sessions.OpenConnectionAsync(ct).ConfigureAwait(false);
                connection.Notification += (_, e) =>
                    signal.Committed(long.TryParse(e.Payload, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) ? seq : 0);
                await ExecuteAsync(connection, $"LISTEN {ChangeChannel}", ct).ConfigureAwait(false);
                signal.Connected();
                retry = ListenerFirstRetry;
                while (true)
                {
                    // Returns after each notification (the handler above has run); the session's keepalive
                    // (KeepAlive on _sessions) turns a silently dead connection into an exception here.
                    await connection.WaitAsync(ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException or InvalidOperationException or ObjectDisposedException)
            {
                // The followers poll meanwhile; the outage is what stats show until the listener is back.
                signal.Disconnected(ex.Message);
            }
            try
            {
                await Task.Delay(retry + TimeSpan.FromMilliseconds(Random.Shared.Next(0, (int)(retry.TotalMilliseconds / 2))), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, ListenerMaxRetry.Ticks));
        }
    }

    /// <summary>
    /// The unpooled sessions: a listener's connection stays open for good, and a job lock must end with
    /// its connection, neither of which a pool slot is for. The keepalive makes a listener notice a
    /// connection that died without a word (a failover, a dropped NAT entry) within seconds.
    /// </summary>
    private static NpgsqlDataSource SessionSource(NpgsqlConnectionStringBuilder pooled)
    {
        var builder = new NpgsqlConnectionStringBuilder(pooled.ConnectionString)
        {
            Pooling = false,
            KeepAlive = 10,
            MaxAutoPrepare = 0,
        };
        return NpgsqlDataSource.Create(builder);
    }
}
