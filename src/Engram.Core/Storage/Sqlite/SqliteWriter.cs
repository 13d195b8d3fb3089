using System.Threading.Channels;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The single writer of a store. Work items queue on a channel; one loop drains whatever is
/// waiting (up to <see cref="MaxGroupSize"/>), runs the items inside one <c>BEGIN IMMEDIATE</c>
/// transaction and commits once. That is group commit: one fsync acknowledges many writes. An item
/// that fails never takes its neighbours with it (see <see cref="RunOptimistically"/>).
/// <para>
/// The commit itself does not fsync (<c>synchronous=NORMAL</c>): when more writes are queued the
/// writer goes on with the next group at once, and <see cref="SqliteWalSync"/> acknowledges the
/// group's <see cref="WriteDurability.Full"/> items after it has synced the WAL on its own thread;
/// when none are, the writer syncs itself.
/// <see cref="WriteDurability.Relaxed"/> items are acknowledged at commit: their WAL frames have
/// reached the operating system, so they survive a crash of this process but may be lost with the
/// machine's power (until a later sync or checkpoint covers them).
/// </para>
/// </summary>
public sealed class SqliteWriter : IAsyncDisposable
{
    private const int MaxGroupSize = 256;

    /// <summary>Polls before the writer sleeps: 50 x 20 pauses, some 20-50 µs.</summary>
    private const int SpinIterations = 50;

    /// <summary>How long the writer sleeps before it gives the follower an idle turn.</summary>
    private static readonly TimeSpan IdleInterval = TimeSpan.FromSeconds(1);

    /// <summary>Tries at opening a transaction in step with the follower before running a group regardless.</summary>
    private const int CatchUpAttempts = 3;

    private readonly SqliteConnection _connection;
    private readonly Channel<IWorkItem> _queue;
    private readonly Thread _thread;
    private readonly SqliteCheckpointer _checkpointer;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SqliteWalSync _walSync;

    /// <summary>WAL syncs made so far (tests).</summary>
    internal long WalSyncs => _walSync.Syncs;
    private readonly List<IPendingWrite> _durable = [];
    private readonly ManualResetEventSlim _wake = new(initialState: false, spinCount: 0);
    /// <summary>1 while the loop sleeps on <see cref="_wake"/> (or is about to): a producer then sets it.</summary>
    private int _sleeping;
    private readonly ITransactionFollower? _follower;

    /// <param name="follower">In-memory state that follows this writer's transactions (see <see cref="ITransactionFollower"/>).</param>
    /// <param name="flush">Wraps the WAL sync (tests hold it to observe acknowledgements); see <see cref="SqliteWalSync"/>.</param>
    /// <summary>The writer connection's page cache, in KiB (SQLite's default is 2 MB).</summary>
    public const int WriterCacheKibibytes = 64 * 1024;

    internal SqliteWriter(SqliteConnection connection, ITransactionFollower? follower, int queueCapacity = DefaultQueueCapacity, Action<Action>? flush = null)
    {
        _connection = connection;
        _follower = follower;
        _queue = Channel.CreateBounded<IWorkItem>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _connection.Execute($"PRAGMA wal_autocheckpoint={SqliteCheckpointer.WriterBackstopPages}");
        // Commits write the WAL without fsync; _walSync makes them durable before Full callers hear back.
        _connection.Execute("PRAGMA synchronous=NORMAL");
        // A fold cycle writes key states across the whole of kv_entries; with SQLite's default 2 MB cache every page it
        // touched was read again from the file the next cycle (13% more random-key SETs with 64 MB, bench/README.md,
        // session 28). The cache grows only as pages are used.
        _connection.Execute($"PRAGMA cache_size=-{WriterCacheKibibytes}");
        _walSync = new SqliteWalSync(connection.Path, flush);
        _checkpointer = new SqliteCheckpointer(connection.Path);
        // A thread of its own, not the thread pool: the loop blocks in SQLite for every commit, and a
        // dedicated thread wakes without a pool dispatch (and shows up by name in a profiler).
        _thread = new Thread(Run) { Name = "engram-writer", IsBackground = true };
        _thread.Start();
    }

    /// <param name="flush">Wraps the WAL sync (tests hold it to observe acknowledgements); see <see cref="SqliteWalSync"/>.</param>
    public SqliteWriter(SqliteConnection connection, int queueCapacity = DefaultQueueCapacity, Action<Action>? flush = null)
        : this(connection, follower: null, queueCapacity, flush)
    {
    }

    /// <summary>The bound on <see cref="QueueLength"/> when none is given: full, callers wait (back-pressure).</summary>
    public const int DefaultQueueCapacity = 10_000;

    /// <summary>Work items waiting for the writer (at most the queue's capacity; callers beyond it wait to enqueue).</summary>
    public int QueueLength => _queue.Reader.Count;

    /// <summary>
    /// Runs around every group (the key-value journal, <see cref="SqliteKvJournal"/>): may hand the writer an item to run
    /// first, and is told when the group ended. Set once, before the first write.
    /// </summary>
    internal IWriterGate? Gate { get; set; }

    /// <summary>
    /// Wakes the writer if it sleeps: something was queued, or the gate has work (<see cref="IWriterGate.MillisecondsUntilDue"/>
    /// changed). Called after the change is visible; the full fence pairs with the one in <see cref="WaitForWork"/>, so either
    /// the loop sees the change before it sleeps or this call sees it sleeping. The loop is woken directly, not through the
    /// channel's continuation, which the channel runs on a pool thread: a pool thread woken for every group spun in
    /// <c>sched_yield</c> afterwards: 6% of the process's CPU under pipelined SETs, 1.9% after (bench/README.md, session 36).
    /// </summary>
    internal void Nudge()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleeping) != 0)
        {
            _wake.Set();
        }
    }

    /// <summary>Queues <paramref name="write"/>; the task completes after the transaction holding it has committed.</summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, T> write, CancellationToken ct = default) =>
        WriteAsync(write, WriteDurability.Full, ct);

    /// <summary>
    /// Queues <paramref name="write"/> with the given durability; the task completes after its
    /// transaction has committed (and, for <see cref="WriteDurability.Full"/>, been synced).
    /// <paramref name="write"/> may run twice (when a neighbour in its group fails after writing,
    /// see <see cref="RunOptimistically"/>), so it must act only through the connection it is given
    /// (and the writer's <see cref="ITransactionFollower"/>, which follows its transaction).
    /// </summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, T> write, WriteDurability durability, CancellationToken ct = default) =>
        WriteAsync(write, durability, touchesKv: true, ct);

    /// <summary>
    /// <see cref="WriteAsync{T}(Func{SqliteConnection, T}, WriteDurability, CancellationToken)"/>, saying whether the item reads or
    /// writes key-value states (<paramref name="touchesKv"/>; when unsure, it does): a group of such items runs after the
    /// journal's waiting SETs and holds the journaled SETs back until it commits (<see cref="IWriterGate"/>).
    /// </summary>
    internal async Task<T> WriteAsync<T>(Func<SqliteConnection, T> write, WriteDurability durability, bool touchesKv, CancellationToken ct = default)
    {
        var item = new WorkItem<T>(write, durability) { TouchesKv = touchesKv };
        try
        {
            await _queue.Writer.WriteAsync(item, ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(SqliteWriter), "the store is closed");
        }
        Nudge();
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
            var gate = Gate;
            var touchesKv = false;
            foreach (var item in group)
            {
                touchesKv |= item.TouchesKv;
            }
            GateItem? first = null;
            if (gate?.BeginGroup(touchesKv) is { } work)
            {
                first = new GateItem(work);
                group.Insert(0, first);
            }
            var committed = false;
            try
            {
                // Woken for the gate, which had nothing after all (another group took it): nothing to write.
                committed = group.Count == 0 || RunGroup(group);
            }
            catch (Exception ex)
            {
                // Never let the one writer loop die: fail this group's callers and keep serving.
                AbortGroup(group, ex);
            }
            finally
            {
                gate?.EndGroup(touchesKv, applied: committed && first is { Failed: false });
            }
            Acknowledge(group, committed);
            if (committed)
            {
                FollowerTurn(f => f.AfterGroup(_connection));
            }
        }
        FollowerTurn(f => f.Closing(_connection));
    }

    /// <summary>Background work of the follower, in transactions of its own; a failure leaves the writer serving (it retries later).</summary>
    private void FollowerTurn(Action<ITransactionFollower> turn)
    {
        if (_follower is null)
        {
            return;
        }
        try
        {
            turn(_follower);
        }
        catch (Exception)
        {
            RollBack();
        }
    }

    /// <summary>
    /// Blocks this thread until an item is queued or the gate's work is due (<see cref="IWriterGate.MillisecondsUntilDue"/>);
    /// false once the queue is closed and empty. Polls for about <see cref="SpinIterations"/> short pauses first (no system
    /// calls: a caller that answers fast is caught without a futex wake-up, which costs tens of µs on a VM), then sleeps on an
    /// event that never spins (<c>Task.Wait</c> spins with <c>sched_yield</c>, which took ~10% of the writer's time under load,
    /// measured, on cores the request threads need) until <see cref="Nudge"/> or the gate's deadline.
    /// </summary>
    private bool WaitForWork(ChannelReader<IWorkItem> reader)
    {
        for (var i = 0; i < SpinIterations; i++)
        {
            Thread.SpinWait(20);
            if (reader.TryPeek(out _) || Gate?.MillisecondsUntilDue() == 0)
            {
                return true;
            }
        }
        while (true)
        {
            _wake.Reset();
            Interlocked.Exchange(ref _sleeping, 1); // a full fence: see Nudge
            var due = Gate?.MillisecondsUntilDue() ?? Timeout.Infinite;
            if (reader.TryPeek(out _) || due == 0)
            {
                Volatile.Write(ref _sleeping, 0);
                return true;
            }
            if (reader.Completion.IsCompleted)
            {
                Volatile.Write(ref _sleeping, 0);
                return false;
            }
            var idle = (int)IdleInterval.TotalMilliseconds;
            var woken = _wake.Wait(due == Timeout.Infinite ? idle : Math.Min(due, idle));
            Volatile.Write(ref _sleeping, 0);
            if (!woken && (due == Timeout.Infinite || due >= idle))
            {
                FollowerTurn(f => f.Idle(_connection));
            }
        }
    }

    /// <summary>Runs and commits one group; true when it committed (its items may still have failed one by one).</summary>
    private bool RunGroup(List<IWorkItem> group)
    {
        if (!TryBegin(group) || !RunOptimistically(group))
        {
            return false;
        }

        try
        {
            _connection.ExecuteNonQuery("COMMIT");
        }
        catch (Exception ex)
        {
            AbortGroup(group, ex);
            return false;
        }
        _follower?.Committed();
        _checkpointer.Signal();
        return true;
    }

    /// <summary>
    /// Hands the group's outcomes to its callers: failures and <see cref="WriteDurability.Relaxed"/>
    /// items at once (their WAL frames have reached the operating system, which survives this process
    /// crashing), <see cref="WriteDurability.Full"/> items after the WAL sync. Never on this thread:
    /// callers' continuations run on a pool thread, one work item per batch, so a group wakes one
    /// thread instead of one per caller.
    /// </summary>
    private void Acknowledge(List<IWorkItem> group, bool committed)
    {
        List<IPendingWrite>? now = null;
        _durable.Clear();
        foreach (var item in group)
        {
            if (item is GateItem)
            {
                continue; // nobody waits on the gate's work: publishing it would only wake a pool thread
            }
            if (committed && !item.Failed && item.Durability == WriteDurability.Full)
            {
                _durable.Add(item);
            }
            else
            {
                (now ??= new List<IPendingWrite>(group.Count)).Add(item);
            }
        }
        if (now is not null)
        {
            PendingWrites.Publish(now);
        }
        if (_durable.Count > 0)
        {
            if (_queue.Reader.TryPeek(out _))
            {
                _walSync.AfterNextSync(_durable); // more to do: sync beside the next group
            }
            else
            {
                _walSync.SyncNow(_durable); // nothing waiting: a hand-over would only add a thread wake-up
            }
        }
    }

    /// <summary>
    /// Runs the items one after another without savepoints: most items succeed, and an item that
    /// fails usually does so before writing anything (a condition, a missing row), which
    /// <c>sqlite3_total_changes</c> tells. Only an item that fails after writing forces a rollback;
    /// the group then runs again with a savepoint per item (<see cref="RunIsolated"/>). A savepoint
    /// per item costs two statements and a copy of every page the item touches. False when nothing
    /// is left to commit.
    /// </summary>
    private bool RunOptimistically(List<IWorkItem> group)
    {
        foreach (var item in group)
        {
            if (item.Failed)
            {
                continue; // a key-value item behind a journal apply that failed (FailBehindGate)
            }
            var before = _connection.TotalChanges;
            var mark = _follower?.Mark() ?? 0;
            try
            {
                item.Run(_connection);
            }
            catch (Exception ex)
            {
                item.Fail(ex);
                FailBehindGate(group, item, ex);
                _follower?.RollBackTo(mark);
                if (_connection.TotalChanges == before && _connection.InTransaction)
                {
                    continue; // it wrote nothing: nothing to undo
                }
                // Undoing its writes undoes its neighbours' too: run those again, each in a savepoint.
                RollBack();
                var rest = group.FindAll(i => !i.Failed);
                return rest.Count > 0 && TryBegin(rest) && RunIsolated(rest);
            }
        }
        return true;
    }

    /// <summary>
    /// Opens the group's transaction, in step with the follower (when another connection committed
    /// meanwhile, the follower catches up first); when that fails, so do <paramref name="items"/>.
    /// </summary>
    private bool TryBegin(List<IWorkItem> items)
    {
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                _connection.ExecuteNonQuery("BEGIN IMMEDIATE");
                if (_follower is null || attempt == CatchUpAttempts || _follower.InSync(_connection))
                {
                    return true;
                }
                RollBack();
                _follower.CatchUp(_connection);
            }
        }
        catch (Exception ex)
        {
            foreach (var item in items)
            {
                item.Fail(ex);
            }
            return false;
        }
    }

    /// <summary>Runs each item in its own savepoint, so a failing one rolls back alone; false when the transaction itself broke.</summary>
    private bool RunIsolated(List<IWorkItem> group)
    {
        foreach (var item in group)
        {
            if (item.Failed)
            {
                continue; // a key-value item behind a journal apply that failed (FailBehindGate)
            }
            var mark = _follower?.Mark() ?? 0;
            try
            {
                _connection.ExecuteNonQuery("SAVEPOINT item");
                item.Run(_connection);
                _connection.ExecuteNonQuery("RELEASE item");
            }
            catch (Exception ex)
            {
                item.Fail(ex);
                FailBehindGate(group, item, ex);
                _follower?.RollBackTo(mark);
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

    /// <summary>
    /// When <paramref name="failed"/> is the gate's work (the journal's waiting SETs, acknowledged already), the group's items
    /// that read or write key states fail too, before they run: they would compute from tables without those SETs (a DEL
    /// finding no key, an INCR from the value before) and commit, and the SETs, applied by a later group, would then land
    /// after writes acknowledged after them. Writes of memories, the graph and the rest do not depend on them and go on.
    /// </summary>
    private static void FailBehindGate(List<IWorkItem> group, IWorkItem failed, Exception ex)
    {
        if (failed is not GateItem)
        {
            return;
        }
        foreach (var item in group)
        {
            if (item.TouchesKv && !item.Failed)
            {
                item.Fail(new StoreException($"the key-value journal's waiting writes could not be applied first: {ex.Message}", ex));
            }
        }
    }

    private void RollBack()
    {
        _follower?.RolledBack();
        if (!_connection.InTransaction)
        {
            return;
        }
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
        Nudge();
        await _stopped.Task.ConfigureAwait(false);
        _walSync.Dispose(); // acknowledges what the last groups committed
        _checkpointer.Dispose();
        _wake.Dispose();
    }

    private interface IWorkItem : IPendingWrite
    {
        WriteDurability Durability { get; }

        bool TouchesKv { get; }

        void Run(SqliteConnection connection);
    }

    /// <summary>
    /// One queued write. Its outcome is recorded on the writer's thread and published later from a
    /// pool thread (<see cref="PendingWrites.Publish"/>); the task's continuations then run inline on
    /// that thread, never on the writer's.
    /// </summary>
    private sealed class WorkItem<T>(Func<SqliteConnection, T> write, WriteDurability durability) : IWorkItem
    {
        private readonly TaskCompletionSource<T> _completion = new();
        private T? _result;
        private Exception? _error;

        public WriteDurability Durability => durability;

        public bool TouchesKv { get; init; } = true;

        public Task<T> Task => _completion.Task;

        public bool Failed => _error is not null;

        public void Run(SqliteConnection connection) => _result = write(connection);

        public void Fail(Exception error) => _error ??= error;

        public void Publish()
        {
            if (_error is null)
            {
                _completion.TrySetResult(_result!);
            }
            else
            {
                _completion.TrySetException(_error);
            }
        }
    }

    /// <summary>The gate's work that opens a group (<see cref="IWriterGate.BeginGroup"/>): nobody waits on it.</summary>
    private sealed class GateItem(Func<SqliteConnection, int> work) : IWorkItem
    {
        private bool _failed;

        public WriteDurability Durability => WriteDurability.Relaxed;

        public bool TouchesKv => false;

        public bool Failed => _failed;

        public void Run(SqliteConnection connection) => work(connection);

        public void Fail(Exception error) => _failed = true;

        public void Publish()
        {
        }
    }
}

/// <summary>
/// What runs around each of the writer's groups (<see cref="SqliteKvJournal"/>); called on the writer's thread.
/// </summary>
internal interface IWriterGate
{
    /// <summary>A group is about to run (<paramref name="touchesKv"/>: some item reads or writes key states); returns work to run first in it, if any.</summary>
    Func<SqliteConnection, int>? BeginGroup(bool touchesKv);

    /// <summary>The group ended, after its commit was published to the follower; <paramref name="applied"/>: the first work committed.</summary>
    void EndGroup(bool touchesKv, bool applied);

    /// <summary>
    /// How long until the gate wants a group even with nothing queued: 0 now, <see cref="Timeout.Infinite"/> never (until it
    /// changes, and then it calls <see cref="SqliteWriter.Nudge"/>). Called on the writer's thread without a lock.
    /// </summary>
    int MillisecondsUntilDue();
}
