using Engram.Core.Common;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Copies committed WAL frames into the main database file on a thread and connection of its own,
/// so the writer does not stall its callers for it. Left to SQLite, every 1,000th page a commit adds
/// to the WAL makes that commit checkpoint inline: copy the pages, fsync the WAL and the database,
/// while every queued write waits (measured: ~20% of two cores idle during a key-value SET load).
/// A passive checkpoint here runs beside the writer and its readers without blocking either.
/// <para>
/// It cannot reset the WAL while writes keep arriving (frames appended during a pass are left for
/// the next), so the writer keeps SQLite's own checkpoint as a backstop at
/// <see cref="WriterBackstopPages"/>: by then almost every frame is already copied, the inline pass
/// is short, and the WAL restarts from its beginning.
/// </para>
/// </summary>
internal sealed class SqliteCheckpointer : IDisposable
{
    /// <summary>The writer's own checkpoint threshold, in WAL pages (SQLite's default is 1,000).</summary>
    public const int WriterBackstopPages = 4_000;

    /// <summary>Commits in quick succession share one pass.</summary>
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(50);

    private readonly string _path;
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;

    public SqliteCheckpointer(string path)
    {
        _path = path;
        _thread = new Thread(Run) { Name = "engram-checkpoint", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Something was committed: checkpoint soon. Cheap and never blocks.</summary>
    public void Signal() => _signal.WakeOnce(); // commits in quick succession: one pass covers them

    private void Run()
    {
        SqliteConnection? connection = null;
        try
        {
            while (true)
            {
                _signal.Wait(_stop.Token);
                try
                {
                    connection ??= SqliteConnection.Open(_path, create: false);
                    connection.Execute("PRAGMA wal_checkpoint(PASSIVE)");
                }
                catch (SqliteException)
                {
                    // Busy or failing: the writer's backstop checkpoint still bounds the WAL. Retry on the next signal.
                    connection?.Dispose();
                    connection = null;
                }
                _stop.Token.WaitHandle.WaitOne(MinInterval);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            connection?.Dispose();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
        _signal.Dispose();
    }
}
