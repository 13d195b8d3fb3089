using System.Runtime.InteropServices;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Makes committed transactions durable, on a thread of its own while the writer has more to do.
/// The writer commits with <c>synchronous=NORMAL</c> (WAL frames reach the operating system, no
/// fsync) and hands over the commit's <see cref="WriteDurability.Full"/> callers; this thread
/// fdatasyncs the WAL file and only then acknowledges them, while the writer already runs the next
/// group. A writer with nothing queued syncs itself instead (<see cref="SyncNow"/>). One sync covers
/// every commit written before it started (the WAL is written in order, and a later sync flushes all
/// earlier frames).
/// <para>
/// A committed frame cannot escape the sync: SQLite only overwrites WAL frames after a checkpoint
/// has copied them into the main file and fsync'd it (the checkpointer's connection runs with
/// <c>synchronous=FULL</c>), and it only deletes the WAL when the last connection closes, which the
/// writer's own connection prevents while this runs.
/// </para>
/// <para>
/// Other connections can read a committed write before it is acknowledged (as with
/// <see cref="WriteDurability.Relaxed"/>); any acknowledged write that depends on it is durable only
/// after it, because its own sync covers the earlier frames.
/// </para>
/// </summary>
internal sealed partial class SqliteWalSync : IDisposable
{
    private readonly object _gate = new();
    private readonly object _flushGate = new(); // the writer and this thread may both sync; the file handle is opened once
    private readonly Action _flush;
    private readonly Thread _thread;
    private List<IPendingWrite> _waiting = [];
    private bool _stopping;
    private FileStream? _wal;
    private long _syncs;

    /// <summary>Syncs that succeeded so far (tests).</summary>
    public long Syncs => Interlocked.Read(ref _syncs);

    /// <param name="databasePath">The database whose <c>-wal</c> file is synced.</param>
    /// <param name="flush">Replaces the sync itself (tests hold it to observe acknowledgements).</param>
    public SqliteWalSync(string databasePath, Action<Action>? flush = null)
    {
        var walPath = databasePath + "-wal";
        Action sync = () => SyncFile(walPath);
        _flush = flush is null ? sync : () => flush(sync);
        _thread = new Thread(Run) { Name = "engram-wal-sync", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Acknowledges <paramref name="waiters"/> once everything committed so far is on disk.</summary>
    public void AfterNextSync(List<IPendingWrite> waiters)
    {
        lock (_gate)
        {
            _waiting.AddRange(waiters);
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>
    /// Syncs on the calling thread (the writer, when no other write is waiting for it) and
    /// acknowledges <paramref name="waiters"/> together with whoever was waiting for the next sync:
    /// at low concurrency this saves waking the sync thread for every commit.
    /// </summary>
    public void SyncNow(List<IPendingWrite> waiters)
    {
        var batch = new List<IPendingWrite>(waiters.Count);
        lock (_gate)
        {
            batch.AddRange(_waiting);
            _waiting.Clear();
        }
        batch.AddRange(waiters);
        FlushAndPublish(batch);
    }

    private void Run()
    {
        while (true)
        {
            List<IPendingWrite> batch;
            lock (_gate)
            {
                while (_waiting.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }
                if (_waiting.Count == 0)
                {
                    return; // stopping, and nobody waits
                }
                (batch, _waiting) = (_waiting, []);
            }
            FlushAndPublish(batch);
        }
    }

    /// <summary>Syncs, then publishes <paramref name="writes"/> (which must not be reused): acknowledged, or failed if the sync failed.</summary>
    private void FlushAndPublish(List<IPendingWrite> writes)
    {
        Exception? failure = null;
        try
        {
            lock (_flushGate)
            {
                _flush();
            }
            Interlocked.Increment(ref _syncs);
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        if (failure is not null)
        {
            // Committed and visible, but not known to be on disk: the caller must not take it as durable.
            var error = new StoreException("the write was committed but syncing it to disk failed: " + failure.Message, failure);
            foreach (var write in writes)
            {
                write.Fail(error);
            }
        }
        PendingWrites.Publish(writes);
    }

    private void SyncFile(string walPath)
    {
        if (_wal is null)
        {
            if (!File.Exists(walPath))
            {
                // A commit in WAL mode always leaves a WAL; SQLite deletes it only when the last
                // connection closes, after checkpointing and syncing the main file. Nothing to sync.
                // (Never open and close the main file here: closing any descriptor of a file drops
                // every POSIX lock this process holds on it, SQLite's included.)
                return;
            }
            _wal = new FileStream(walPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        }
        if (OperatingSystem.IsLinux())
        {
            // fdatasync, as SQLite itself uses: the data and the size, not the timestamps.
            if (FDataSync(_wal.SafeFileHandle.DangerousGetHandle().ToInt32()) != 0)
            {
                throw new IOException($"fdatasync of {walPath} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        else
        {
            _wal.Flush(flushToDisk: true);
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSync(int fd);

    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _thread.Join();
        _wal?.Dispose();
    }
}

/// <summary>A write whose outcome is known but not yet told to its caller.</summary>
internal interface IPendingWrite
{
    bool Failed { get; }

    void Fail(Exception error);

    /// <summary>Completes the caller's task; its continuations run on the calling thread.</summary>
    void Publish();
}

internal static class PendingWrites
{
    /// <summary>Publishes <paramref name="writes"/> (which must not be reused) from one pool work item.</summary>
    public static void Publish(List<IPendingWrite> writes) =>
        ThreadPool.UnsafeQueueUserWorkItem(static batch =>
        {
            foreach (var write in batch)
            {
                write.Publish();
            }
        }, writes, preferLocal: false);
}
