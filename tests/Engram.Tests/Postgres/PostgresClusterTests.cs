using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// The PostgreSQL starter shared by the fixture and the benchmarks: a folder kept between runs keeps its
/// databases (the benchmark builds its 100k database once), and a server left running by a killed run is
/// stopped before the folder is used again.
/// </summary>
public sealed class PostgresClusterTests
{
    [Fact]
    public async Task AFolderKeepsItsDatabases_AcrossAStopAndAStart()
    {
        using var folder = new TempDirectory();
        var first = await PostgresCluster.StartAsync(folder.Path, ["fsync=off"]);
        try
        {
            await ExecuteAsync(first, "postgres", "CREATE DATABASE kept");
            await ExecuteAsync(first, "kept", "CREATE TABLE t (v text); INSERT INTO t VALUES ('still here')");
        }
        finally
        {
            first.Stop();
        }
        first.HasExited.Should().BeTrue();

        var second = await PostgresCluster.StartAsync(folder.Path, ["fsync=off"]);
        try
        {
            second.Port.Should().BePositive();
            await using var connection = new NpgsqlConnection(second.ConnectionString("kept") + ";Pooling=false");
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT v FROM t", connection);
            (await command.ExecuteScalarAsync()).Should().Be("still here", "the second start found the cluster and ran no initdb over it");
        }
        finally
        {
            second.Stop();
        }
    }

    [Fact]
    public async Task StopLeftover_StopsTheServerRunningOverAFolder()
    {
        using var folder = new TempDirectory();
        var running = await PostgresCluster.StartAsync(folder.Path, ["fsync=off"]);
        try
        {
            PostgresCluster.StopLeftover(folder.Path);
            running.HasExited.Should().BeTrue("its postmaster.pid named a live server");
            var again = await PostgresCluster.StartAsync(folder.Path, ["fsync=off"]);
            again.Stop();
        }
        finally
        {
            running.Stop();
        }
    }

    private static async Task ExecuteAsync(PostgresCluster cluster, string database, string sql)
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString(database) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
