using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

public sealed class SqliteConnectionTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private string DbPath => Path.Combine(_dir.Path, "t.db");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Open_SetsWalAndFullSync()
    {
        using var c = SqliteConnection.Open(DbPath);
        c.ScalarText("PRAGMA journal_mode").Should().Be("wal");
        c.ScalarInt64("PRAGMA synchronous").Should().Be(2, "FULL: a commit is on disk before it returns");
        c.ScalarInt64("PRAGMA foreign_keys").Should().Be(1);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(170)]
    [InlineData(171)]
    [InlineData(100_000)]
    public void Text_RoundTripsAtEveryLength_AndEmptyIsNotNull(int length)
    {
        using var c = SqliteConnection.Open(DbPath);
        c.Execute("CREATE TABLE t (s TEXT)");
        // Multi-byte characters cross the stack buffer's limit at a different length than ASCII does.
        var text = string.Concat(Enumerable.Range(0, length).Select(i => i % 3 == 0 ? "é" : i % 3 == 1 ? "✓" : "a"));
        c.ExecuteNonQuery("INSERT INTO t VALUES (?1)", text);
        c.ScalarText("SELECT s FROM t").Should().Be(text);
        c.ScalarInt64("SELECT COUNT(*) FROM t WHERE s IS NULL").Should().Be(0);
    }

    [Fact]
    public void SqliteKeepsNoMemoryStatistics_SoItsAllocationsTakeNoGlobalMutex()
    {
        using var c = SqliteConnection.Open(DbPath);
        SqliteConnection.MemoryStatistics.Should().BeFalse("SQLITE_CONFIG_MEMSTATUS is turned off before SQLite starts");
        c.ScalarInt64("SELECT 1").Should().Be(1, "SQLite started again after the setting");
    }

    [Fact]
    public void BindsAndReadsEveryType()
    {
        using var c = SqliteConnection.Open(DbPath);
        c.Execute("CREATE TABLE t (s TEXT, i INTEGER, d REAL, b BLOB, n TEXT)");
        c.ExecuteNonQuery("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", "héllo ✓", 1L << 40, 0.25, new byte[] { 1, 2, 3 }, null).Should().Be(1);
        using var s = c.Prepare("SELECT s, i, d, b, n FROM t");
        s.Step().Should().BeTrue();
        s.GetText(0).Should().Be("héllo ✓");
        s.GetInt64(1).Should().Be(1L << 40);
        s.GetDouble(2).Should().Be(0.25);
        s.GetBytes(3).ToArray().Should().Equal(1, 2, 3);
        s.IsNull(4).Should().BeTrue();
        s.GetTextOrNull(4).Should().BeNull();
        s.Step().Should().BeFalse();
    }

    [Fact]
    public void Prepare_ReusesCachedStatementsWithFreshBindings()
    {
        using var c = SqliteConnection.Open(DbPath);
        c.Execute("CREATE TABLE t (v INTEGER)");
        for (var i = 0; i < 5; i++)
        {
            c.ExecuteNonQuery("INSERT INTO t VALUES (?1)", i);
        }
        c.ScalarInt64("SELECT SUM(v) FROM t WHERE v > ?1", 2).Should().Be(7);
        c.ScalarInt64("SELECT SUM(v) FROM t WHERE v > ?1", 0).Should().Be(10);
    }

    [Fact]
    public void Errors_CarryTheMessageAndCode()
    {
        using var c = SqliteConnection.Open(DbPath);
        var bad = () => c.Execute("SELEC 1");
        bad.Should().Throw<SqliteException>().WithMessage("*syntax error*");
        c.Execute("CREATE TABLE u (v INTEGER UNIQUE)");
        c.ExecuteNonQuery("INSERT INTO u VALUES (1)");
        var dup = () => c.ExecuteNonQuery("INSERT INTO u VALUES (1)");
        dup.Should().Throw<SqliteException>().Where(e => (e.ResultCode & 0xff) == 19);
    }

    [Fact]
    public async Task SecondWriter_WaitsForTheLockInsteadOfFailing()
    {
        using var first = SqliteConnection.Open(DbPath);
        first.Execute("CREATE TABLE t (v INTEGER)");
        first.Execute("BEGIN IMMEDIATE");
        first.ExecuteNonQuery("INSERT INTO t VALUES (1)");

        var second = Task.Run(() =>
        {
            using var other = SqliteConnection.Open(DbPath);
            other.Execute("BEGIN IMMEDIATE");
            other.ExecuteNonQuery("INSERT INTO t VALUES (2)");
            other.Execute("COMMIT");
        });
        await Task.Delay(300);
        second.IsCompleted.Should().BeFalse("the second writer waits on the busy timeout");
        first.Execute("COMMIT");
        await second;
        first.ScalarInt64("SELECT COUNT(*) FROM t").Should().Be(2);
    }

    [Fact]
    public void Open_BadPath_Throws()
    {
        var open = () => SqliteConnection.Open(Path.Combine(_dir.Path, "missing-folder", "x.db"));
        open.Should().Throw<SqliteException>().WithMessage("*cannot open*");
    }
}
