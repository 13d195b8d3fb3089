using System.Threading.Channels;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The single writer of a store. Work items queue on a channel; one loop drains whatever is
/// waiting (up to <see cref="MaxGroupSize"/>), runs each item in its own savepoint inside one
/// <c>BEGIN IMMEDIATE</c> transaction, commits once, and only then completes the callers' tasks.
/// That is group commit: one fsync acknowledges many writes, and an item that fails rolls back
/// alone without taking its neighbours with it.
/// <para>
/// A group whose items all asked for <see cref="WriteDurability.Relaxed"/> commits with
/// <c>synchronous=NORMAL</c>: the WAL frames reach the operating system but are not fsync'd, so
/// the write survives a crash of this process but may be lost with the machine's power. Any
/// <see cref="WriteDurability.Full"/> item in the group makes the whole group fsync (and that
/// fsync also makes every earlier relaxed commit durable, since they precede it in the WAL).
/// </para>
/// </summary>
public sealed class SqliteWriter : IAsyncDisposable
{
    private const int MaxGroupSize = 256;

    private readonly SqliteConnection _connection;
    private readonly Channel<IWorkItem> _queue;
    private readonly Thread _thread;
    private readonly SqliteCheckpointer _checkpointer;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WriteDurability _synchronous = WriteDurability.Full;

    public SqliteWriter(SqliteConnection connection, int queueCapacity = 10_000)
    {
        _connection = connection;
        _queue = Channel.CreateBounded<IWorkItem>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _connection.Execute($"PRAGMA wal_autocheckpoint={SqliteCheckpointer.WriterBackstopPages}");
        _checkpointer = new SqliteCheckpointer(connection.Path);
        // A thread of its own, not the thread pool: the loop blocks in SQLite for every commit, and a
        // dedicated thread wakes without a pool dispatch (and shows up by name in a profiler).
        _thread = new Thread(Run) { Name = "engram-writer", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Queues <paramref name="write"/>; the task completes after the transaction holding it has committed.</summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, T> write, CancellationToken ct = default) =>
        WriteAsync(write, WriteDurability.Full, ct);

    /// <summary>Queues <paramref name="write"/> with the given durability; the task completes after its transaction has committed.</summary>
    public async Task<T> WriteAsync<T>(Func<SqliteConnection, T> write, WriteDurability durability, CancellationToken ct = default)
    {
        var item = new WorkItem<T>(write, durability);
        try
        {
            await _queue.Writer.WriteAsync(item, ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(SqliteWriter), "the store is closed");
        }
        return await item.Task.ConfigureAwait(false);
    }

    private void Run()
    {
        try
        {
            Loop();
            _stopped.SetResult();
        }
        catch (Exception ex)
        {
            _stopped.SetException(ex);
        }
    }

    private void Loop()
    {
        var group = new List<IWorkItem>(MaxGroupSize);
        var reader = _queue.Reader;
        while (reader.TryPeek(out _) || WaitForWork(reader))
        {
            group.Clear();
            while (group.Count < MaxGroupSize && reader.TryRead(out var item))
            {
                group.Add(item);
            }
            try
            {
                RunGroup(group);
            }
            catch (Exception ex)
            {
                // Never let the one writer loop die: fail this group's callers and keep serving.
                AbortGroup(group, ex);
            }
        }
    }

    /// <summary>Blocks this thread until an item is queued; false once the queue is closed and empty.</summary>
    private static bool WaitForWork(ChannelReader<IWorkItem> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompleted ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    private void RunGroup(List<IWorkItem> group)
    {
        try
        {
            SetSynchronous(group.TrueForAll(i => i.Durability == WriteDurability.Relaxed) ? WriteDurability.Relaxed : WriteDurability.Full);
            _connection.ExecuteNonQuery("BEGIN IMMEDIATE");
        }
        catch (Exception ex)
        {
            foreach (var item in group)
            {
                item.Fail(ex);
            }
            return;
        }

        if (group.Count == 1)
        {
            // Nothing to isolate a lone item from: its failure rolls back the transaction itself.
            if (!RunAlone(group[0]))
            {
                return;
            }
        }
        else if (!RunIsolated(group))
        {
            return;
        }

        try
        {
            _connection.ExecuteNonQuery("COMMIT");
        }
        catch (Exception ex)
        {
            AbortGroup(group, ex);
            return;
        }

        _checkpointer.Signal();
        foreach (var item in group)
        {
            item.Complete();
        }
    }

    /// <summary>Runs the lone item of a group; false (transaction rolled back, item failed) when it throws.</summary>
    private bool RunAlone(IWorkItem item)
    {
        try
        {
            item.Run(_connection);
            return true;
        }
        catch (Exception ex)
        {
            item.Fail(ex);
            RollBack();
            return false;
        }
    }

    /// <summary>Runs each item in its own savepoint, so a failing one rolls back alone; false when the transaction itself broke.</summary>
    private bool RunIsolated(List<IWorkItem> group)
    {
        foreach (var item in group)
        {
            try
            {
                _connection.ExecuteNonQuery("SAVEPOINT item");
                item.Run(_connection);
                _connection.ExecuteNonQuery("RELEASE item");
            }
            catch (Exception ex)
            {
                item.Fail(ex);
                try
                {
                    _connection.Execute("ROLLBACK TO item; RELEASE item");
                }
                catch (Exception rollbackError)
                {
                    // The transaction itself is broken: nothing in this group can commit.
                    AbortGroup(group, rollbackError);
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>Switches the connection's commit mode only when it changes (the pragma costs a parse).</summary>
    private void SetSynchronous(WriteDurability durability)
    {
        if (durability != _synchronous)
        {
            _connection.Execute(durability == WriteDurability.Relaxed ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
            _synchronous = durability;
        }
    }

    private void RollBack()
    {
        try
        {
            _connection.Execute("ROLLBACK");
        }
        catch (SqliteException)
        {
            // No transaction left to roll back.
        }
    }

    private void AbortGroup(List<IWorkItem> group, Exception error)
    {
        RollBack();
        foreach (var item in group)
        {
            item.Fail(new StoreException("the write was rolled back: " + error.Message, error));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopped.Task.ConfigureAwait(false);
        _checkpointer.Dispose();
    }

    private interface IWorkItem
    {
        WriteDurability Durability { get; }

        void Run(SqliteConnection connection);

        void Complete();

        void Fail(Exception error);
    }

    private sealed class WorkItem<T>(Func<SqliteConnection, T> write, WriteDurability durability) : IWorkItem
    {
        public WriteDurability Durability => durability;

        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private bool _failed;

        public Task<T> Task => _completion.Task;

        public void Run(SqliteConnection connection) => _result = write(connection);

        public void Complete()
        {
            if (!_failed)
            {
                _completion.TrySetResult(_result!);
            }
        }

        public void Fail(Exception error)
        {
            _failed = true;
            _completion.TrySetException(error);
        }
    }
}
