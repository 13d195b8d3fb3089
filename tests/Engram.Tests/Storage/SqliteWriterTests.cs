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
    public async Task RelaxedGroups_CommitWithoutFsync_AndOneFullItemMakesTheWholeGroupFull()
    {
        using var connection = SqliteConnection.Open(Path.Combine(_dir.Path, "w.db"));
        await using var writer = new SqliteWriter(connection);
        // PRAGMA synchronous answers 1 for NORMAL (no fsync at commit in WAL mode), 2 for FULL.
        static long Synchronous(SqliteConnection c) => c.ScalarInt64("PRAGMA synchronous")!.Value;

        (await writer.WriteAsync(Synchronous, WriteDurability.Relaxed)).Should().Be(1);
        (await writer.WriteAsync(Synchronous, WriteDurability.Full)).Should().Be(2);
        (await writer.WriteAsync(Synchronous)).Should().Be(2, "Full is the default");

        // Hold the writer with one item so the next two queue up and run as one group.
        using var release = new ManualResetEventSlim();
        var started = new TaskCompletionSource();
        var blocker = writer.WriteAsync(c =>
        {
            started.SetResult();
            release.Wait(TimeSpan.FromSeconds(30));
            return 0L;
        }, WriteDurability.Relaxed);
        await started.Task;
        var relaxed = writer.WriteAsync(Synchronous, WriteDurability.Relaxed);
        var full = writer.WriteAsync(Synchronous, WriteDurability.Full);
        release.Set();
        await blocker;
        (await relaxed).Should().Be(2, "a relaxed item grouped with a full one is committed with fsync");
        (await full).Should().Be(2);
        (await writer.WriteAsync(Synchronous, WriteDurability.Relaxed)).Should().Be(1);
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
        new FileInfo(path + "-wal").Length.Should().BeLessThan(24L * 1024 * 1024);
        connection.ScalarInt64("SELECT COUNT(*) FROM t").Should().Be(430);
    }
}
