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
}
