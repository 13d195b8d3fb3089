using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

public sealed class SqliteWriterTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task AWriteThatBreaksTheTransaction_FailsAlone_AndTheWriterKeepsServing()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        await using var writer = new SqliteWriter(connection);

        // Ending the group's transaction from inside an item leaves nothing to release or commit.
        var breaker = () => writer.WriteAsync(c =>
        {
            c.Execute("COMMIT");
            return 0;
        });
        await breaker.Should().ThrowAsync<Exception>();

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (?1)", i))));
        results.Should().OnlyContain(changed => changed == 1);
        connection.ScalarInt64("SELECT COUNT(*) FROM t").Should().BeGreaterThanOrEqualTo(100);
    }

    [Fact]
    public async Task Acknowledgement_ComesOnlyAfterCommit()
    {
        var path = Path.Combine(_dir.Path, "w.db");
        using var connection = SqliteConnection.Open(path);
        connection.Execute("CREATE TABLE t (v INTEGER)");
        await using var writer = new SqliteWriter(connection);
        await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (1)"));
        // A second connection sees the row the moment the write is acknowledged.
        using var reader = SqliteConnection.Open(path);
        reader.ScalarInt64("SELECT COUNT(*) FROM t").Should().Be(1);
    }

    [Fact]
    public async Task AfterDispose_WritesAreRefused()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        var writer = new SqliteWriter(connection);
        await writer.DisposeAsync();
        var write = () => writer.WriteAsync(c => 1);
        await write.Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task ALoneWriteThatThrows_LeavesNoTrace()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        await using var writer = new SqliteWriter(connection);

        // A group of one runs without a savepoint: its half-done work must go with the transaction.
        var failing = () => writer.WriteAsync<int>(c =>
        {
            c.ExecuteNonQuery("INSERT INTO t VALUES (1)");
            throw new InvalidOperationException("refused after writing");
        });
        await failing.Should().ThrowAsync<InvalidOperationException>().WithMessage("refused after writing");
        await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (2)"));
        connection.ScalarInt64("SELECT group_concat(v) FROM t").Should().Be(2);
    }

    [Fact]
    public async Task AFullWrite_IsAcknowledgedOnlyAfterTheWalSync_ARelaxedOneAtCommit()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        using var syncMayRun = new ManualResetEventSlim(initialState: true);
        var syncs = 0;
        await using var writer = new SqliteWriter(connection, flush: sync =>
        {
            syncMayRun.Wait(TimeSpan.FromSeconds(30));
            sync();
            Interlocked.Increment(ref syncs);
        });
        await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (0)"));
        Volatile.Read(ref syncs).Should().BeGreaterThan(0, "a full write waits for a sync");

        // Hold the writer so that both writes below run in one group, then hold the sync.
        syncMayRun.Reset();
        var hold = await WriterHold.StartAsync(writer, _ => 0, WriteDurability.Relaxed);
        var full = writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (1)"), WriteDurability.Full);
        var relaxed = writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (2)"), WriteDurability.Relaxed);
        await hold.ReleaseAsync();
        (await relaxed).Should().Be(1, "a relaxed write is acknowledged at commit, sync or no sync");
        await Task.Delay(200);
        full.IsCompleted.Should().BeFalse("the sync that makes it durable has not run");
        using (var reader = SqliteConnection.Open(connection.Path))
        {
            reader.ScalarInt64("SELECT COUNT(*) FROM t WHERE v = 1").Should().Be(1, "it is committed, only not yet synced");
        }

        syncMayRun.Set();
        (await full).Should().Be(1);
        // The commits do not fsync by themselves: durability is the sync thread's job.
        connection.ScalarInt64("PRAGMA synchronous").Should().Be(1);
    }

    [Fact]
    public async Task AFailedWalSync_FailsTheFullWritesWaitingForIt()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        var failSync = true;
        await using var writer = new SqliteWriter(connection, flush: sync =>
        {
            if (Volatile.Read(ref failSync))
            {
                throw new IOException("disk gone");
            }
            sync();
        });
        var full = () => writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (1)"));
        (await full.Should().ThrowAsync<StoreException>()).Which.Message.Should().Contain("syncing it to disk failed").And.Contain("disk gone");
        (await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (2)"), WriteDurability.Relaxed)).Should().Be(1);

        Volatile.Write(ref failSync, false);
        (await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (3)"))).Should().Be(1);
    }

    [Fact]
    public async Task InOneGroup_AnItemThatFailsAfterWriting_IsUndoneAlone_AndOneThatFailsBeforeWriting_CostsNoRollback()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        await using var writer = new SqliteWriter(connection);

        // Hold the writer with one item so the next ones queue up and run as one group.
        // Group 1: a refusal before writing anything leaves its neighbours' work standing (no rerun).
        var runsOfFirst = 0;
        var hold = await WriterHold.StartAsync(writer, c => c.ExecuteNonQuery("INSERT INTO t VALUES (0)"), WriteDurability.Full);
        var first = writer.WriteAsync(c =>
        {
            runsOfFirst++;
            return c.ExecuteNonQuery("INSERT INTO t VALUES (1)");
        });
        var refusedEarly = writer.WriteAsync<int>(c => throw new InvalidOperationException("refused before writing"));
        var afterEarly = writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (2)"));
        await hold.ReleaseAsync();
        (await first).Should().Be(1);
        (await afterEarly).Should().Be(1);
        await refusedEarly.Invoking(t => t).Should().ThrowAsync<InvalidOperationException>().WithMessage("refused before writing");
        runsOfFirst.Should().Be(1, "nothing was rolled back, so nothing ran again");

        // Group 2: a refusal after writing rolls the group back; its neighbours run again, once committed.
        var runsOfSecond = 0;
        hold = await WriterHold.StartAsync(writer, _ => 0, WriteDurability.Full);
        var second = writer.WriteAsync(c =>
        {
            runsOfSecond++;
            return c.ExecuteNonQuery("INSERT INTO t VALUES (3)");
        });
        var refusedLate = writer.WriteAsync<int>(c =>
        {
            c.ExecuteNonQuery("INSERT INTO t VALUES (99)");
            throw new InvalidOperationException("refused after writing");
        });
        var afterLate = writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (4)"));
        await hold.ReleaseAsync();
        (await second).Should().Be(1);
        (await afterLate).Should().Be(1);
        await refusedLate.Invoking(t => t).Should().ThrowAsync<InvalidOperationException>().WithMessage("refused after writing");
        runsOfSecond.Should().Be(2, "the rollback undid its first run");

        connection.ScalarText("SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY v)").Should().Be("0,1,2,3,4",
            "every item but the one that failed after writing is committed exactly once, rerun or not");
    }

    [Fact]
    public async Task CommittedPages_ReachTheMainFileInTheBackground_AndTheWalStaysBounded()
    {
        var path = Path.Combine(_dir.Path, "w.db");
        using var connection = SqliteConnection.Open(path);
        connection.Execute("CREATE TABLE t (v BLOB)");
        await using var writer = new SqliteWriter(connection);
        var mainFileBefore = new FileInfo(path).Length;

        // 3 MB in 30 commits: below the writer's own checkpoint threshold (4,000 pages), so only the
        // background checkpointer can have copied it into the main file.
        for (var i = 0; i < 30; i++)
        {
            await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (randomblob(100000))"));
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (new FileInfo(path).Length < 3_000_000 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        mainFileBefore.Should().BeLessThan(100_000);
        new FileInfo(path).Length.Should().BeGreaterThanOrEqualTo(3_000_000, "the checkpointer copies committed pages while the writer is idle");

        // 40 MB more under a steady stream of commits: the WAL restarts instead of growing with it.
        for (var i = 0; i < 400; i++)
        {
            await writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (randomblob(100000))"));
        }
        // Without restarts the WAL would hold all 40 MB. With them it stays near the 16 MB backstop, plus what the
        // checkpointer lags behind: once, under a full suite's load, 26.7 MB, so the bound leaves room for that.
        new FileInfo(path + "-wal").Length.Should().BeLessThan(32L * 1024 * 1024, "the WAL restarts instead of growing with the 40 MB written");
        connection.ScalarInt64("SELECT COUNT(*) FROM t").Should().Be(430);
    }

    /// <summary>Occupies the writer with one item until released, so that writes queued meanwhile run as one group.</summary>
    [Fact]
    public async Task A_transaction_follower_sees_exactly_what_committed_through_item_failures_and_reruns()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        var follower = new RecordingFollower();
        await using var writer = new SqliteWriter(connection, follower);
        Func<SqliteConnection, int> Write(int value, bool failBefore = false, bool failAfter = false) => c =>
        {
            follower.Stage(value);
            if (failBefore)
            {
                throw new InvalidOperationException("refused before writing");
            }
            c.ExecuteNonQuery("INSERT INTO t VALUES (?1)", value);
            return failAfter ? throw new InvalidOperationException("refused after writing") : value;
        };

        // One group: a refusal before writing (no rollback), then one after writing (rollback, rerun with savepoints).
        var hold = await WriterHold.StartAsync(writer, Write(0), WriteDurability.Relaxed);
        var writes = new[] { Write(1), Write(2, failBefore: true), Write(3), Write(4, failAfter: true), Write(5) }
            .Select(w => writer.WriteAsync(w, WriteDurability.Relaxed)).ToList();
        await hold.ReleaseAsync();
        await Task.WhenAll(writes.Select(w => w.ContinueWith(_ => { }, TaskScheduler.Default)));

        writes.Select(w => w.IsFaulted).Should().Equal(false, true, false, true, false);
        connection.ScalarText("SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY v)").Should().Be("0,1,3,5");
        follower.Committed.Order().Should().Equal([0, 1, 3, 5], "staged changes follow the SQL: failed items' vanish, rerun items' count once");
    }

    /// <summary>Stages ints; keeps the committed ones.</summary>
    private sealed class RecordingFollower : ITransactionFollower
    {
        private readonly List<int> _staged = [];

        public List<int> Committed { get; } = [];

        public void Stage(int value) => _staged.Add(value);

        public bool InSync(SqliteConnection connection) => true;

        public void CatchUp(SqliteConnection connection)
        {
        }

        public int Mark() => _staged.Count;

        public void RollBackTo(int mark) => _staged.RemoveRange(mark, _staged.Count - mark);

        public void RolledBack() => _staged.Clear();

        void ITransactionFollower.Committed()
        {
            Committed.AddRange(_staged);
            _staged.Clear();
        }

        public void AfterGroup(SqliteConnection connection)
        {
        }

        public void Idle(SqliteConnection connection)
        {
        }

        public void Closing(SqliteConnection connection)
        {
        }
    }

    private sealed class WriterHold
    {
        private readonly ManualResetEventSlim _release = new();
        private Task<int> _item = Task.FromResult(0);

        public static async Task<WriterHold> StartAsync(SqliteWriter writer, Func<SqliteConnection, int> work, WriteDurability durability)
        {
            var hold = new WriterHold();
            var started = new TaskCompletionSource();
            hold._item = writer.WriteAsync(c =>
            {
                started.TrySetResult();
                hold._release.Wait(TimeSpan.FromSeconds(30));
                return work(c);
            }, durability);
            await started.Task;
            return hold;
        }

        public async Task ReleaseAsync()
        {
            _release.Set();
            await _item;
            _release.Dispose();
        }
    }
}
