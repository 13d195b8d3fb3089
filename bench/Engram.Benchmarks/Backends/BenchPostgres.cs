using Engram.Tests.Support;
using Npgsql;

namespace Engram.Benchmarks.Backends;

/// <summary>
/// The PostgreSQL 15 server the <c>backends</c> benchmark runs against: a <see cref="PostgresCluster"/> in
/// <c>&lt;data root&gt;/pg15</c>, kept between runs (so the loaded database is built once), with the settings
/// initdb writes (fsync, synchronous_commit and full_page_writes on, shared_buffers 128 MB): durable as
/// shipped, as the SQLite side is. Only max_connections is raised, for two instances' pools at once.
/// </summary>
public sealed class BenchPostgres : IDisposable
{
    private readonly PostgresCluster _cluster;

    private BenchPostgres(PostgresCluster cluster) => _cluster = cluster;

    public const string Settings = "PostgreSQL 15 (Debian package), initdb defaults: fsync, synchronous_commit and full_page_writes on, shared_buffers 128MB; max_connections 300; over 127.0.0.1 TCP";

    public static async Task<BenchPostgres> StartAsync(string dataRoot)
    {
        var folder = Path.Combine(dataRoot, "pg15");
        // A run killed before it could stop its server leaves it running over the folder.
        PostgresCluster.StopLeftover(folder);
        return new BenchPostgres(await PostgresCluster.StartAsync(folder, ["max_connections=300"]));
    }

    public string Url(string database) => _cluster.Url(database);

    /// <summary>A new database, empty, or a copy of <paramref name="template"/> (a file copy: seconds for 100k memories).</summary>
    public async Task<string> CreateDatabaseAsync(string name, string? template = null)
    {
        await ExecuteAsync($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        await ExecuteAsync(template is null ? $"CREATE DATABASE {name}" : $"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY");
        return name;
    }

    public Task DropDatabaseAsync(string name) => ExecuteAsync($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");

    /// <summary>Whether <paramref name="name"/> exists and was marked complete (<see cref="MarkCompleteAsync"/>).</summary>
    public async Task<bool> IsCompleteAsync(string name)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = name });
        return await command.ExecuteScalarAsync() is Complete;
    }

    /// <summary>The database's comment says it was loaded to the end (a marker written last, like the SQLite folder's marker file).</summary>
    public Task MarkCompleteAsync(string name) => ExecuteAsync($"COMMENT ON DATABASE {name} IS '{Complete}'");

    private const string Complete = "engram bench: complete";

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(_cluster.ConnectionString("postgres") + ";Pooling=false");
        await connection.OpenAsync();
        return connection;
    }

    public void Dispose() => _cluster.Stop();
}
