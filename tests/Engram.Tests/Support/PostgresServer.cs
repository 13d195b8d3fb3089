using Npgsql;

namespace Engram.Tests.Support;

/// <summary>
/// A real PostgreSQL 15 server (<see cref="PostgresCluster"/>: Debian's <c>postgresql-15</c>, which .ci/run
/// installs), one per test run, in a temporary folder. Started at first use, stopped (fast shutdown) and
/// removed when the test process exits. Test classes each take a fresh database (<see cref="CreateDatabaseAsync"/>).
/// </summary>
public sealed class PostgresServer : IDisposable
{
    public const string BinDirectory = PostgresCluster.BinDirectory;

    private static readonly Lazy<Task<PostgresServer>> Shared = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _databases;

    /// <summary>A throwaway server: durability off, room for every test class's pool at once.</summary>
    private static readonly string[] Settings =
        ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300", "shared_buffers=64MB"];

    private PostgresCluster _cluster;
    private readonly Lazy<Task<string>> _migratedTemplate;

    private PostgresServer(PostgresCluster cluster)
    {
        _cluster = cluster;
        _migratedTemplate = new(CreateMigratedTemplateAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The server of this test run, started on the first call.</summary>
    public static Task<PostgresServer> GetAsync() => Shared.Value;

    /// <summary>
    /// A server of the calling test's own (its own folder and port), for tests that stop and start it
    /// (<see cref="StopAsync"/>, <see cref="StartAgainAsync"/>): the shared one serves every other test at once.
    /// Dispose stops it and removes its folder.
    /// </summary>
    public static Task<PostgresServer> StartDedicatedAsync() => StartAsync();

    /// <summary>Whether the postmaster runs.</summary>
    public bool Running => !_cluster.HasExited;

    /// <summary>A fast shutdown (open sessions are ended); returns once the postmaster is gone and the port refuses connections.</summary>
    public Task StopAsync() => Task.Run(_cluster.Stop);

    /// <summary>Starts the server again on the same data folder and port (after <see cref="StopAsync"/>); returns once it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        if (Running)
        {
            return;
        }
        _cluster = await PostgresCluster.StartAsync(Folder, Settings, Port);
    }

    public void Dispose() => Stop();

    public string Folder => _cluster.Folder;

    public int Port => _cluster.Port;

    /// <summary>An Npgsql connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string database) => _cluster.ConnectionString(database);

    /// <summary>The <c>postgres://</c> URL of <paramref name="database"/> (what --store and DATABASE_URL take).</summary>
    public string Url(string database) => _cluster.Url(database);

    /// <summary>
    /// Creates a database and returns its name: a copy of one the store has already migrated (what most
    /// tests want: opening it finds the schema current), or with <paramref name="empty"/> an empty one,
    /// for the tests of the migrations themselves.
    /// </summary>
    public async Task<string> CreateDatabaseAsync(bool empty = false)
    {
        var template = empty ? "template1" : await _migratedTemplate.Value;
        var name = $"engram_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres") + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    private async Task<string> CreateMigratedTemplateAsync()
    {
        var name = await CreateDatabaseAsync(empty: true);
        // Opening the store applies every migration; closing it leaves no session behind (a template must have none).
        await Core.Storage.Postgres.PostgresMemoryStore.Open(Url(name)).DisposeAsync();
        Npgsql.NpgsqlConnection.ClearAllPools();
        return name;
    }

    /// <summary>Drops a test's database, ending sessions a test left open.</summary>
    public void DropDatabase(string name)
    {
        try
        {
            using var connection = new NpgsqlConnection(ConnectionString("postgres") + ";Pooling=false");
            connection.Open();
            using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
            command.ExecuteNonQuery();
        }
        catch (NpgsqlException)
        {
            // The whole server goes at the end of the run.
        }
    }

    /// <summary>A fresh database's URL in one call.</summary>
    public static async Task<string> NewDatabaseUrlAsync()
    {
        var server = await GetAsync();
        return server.Url(await server.CreateDatabaseAsync());
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var root = Path.Combine(Path.GetTempPath(), "engram-tests");
        RemoveOrphans(root);
        var folder = Path.Combine(root, $"pg-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var cluster = await PostgresCluster.StartAsync(folder, Settings);
        var server = new PostgresServer(cluster);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    /// <summary>
    /// Servers of earlier test processes that were killed before they could stop theirs (the folder
    /// names the process): each is stopped and its folder removed.
    /// </summary>
    private static void RemoveOrphans(string root)
    {
        if (!Directory.Exists(root))
        {
            return;
        }
        foreach (var folder in Directory.GetDirectories(root, "pg-*"))
        {
            var parts = Path.GetFileName(folder).Split('-');
            if (parts.Length != 3 || !int.TryParse(parts[1], out var owner) || PostgresCluster.ProcessAlive(owner))
            {
                continue;
            }
            PostgresCluster.StopLeftover(folder);
            RemoveFolder(folder);
        }
    }

    /// <summary>By a detached rm, which finishes even when the test host is ended right after this returns.</summary>
    private static void RemoveFolder(string folder)
    {
        try
        {
            System.Diagnostics.Process.Start("rm", ["-rf", folder])?.Dispose();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Left for the OS temp cleaner.
        }
    }

    /// <summary>Fast shutdown, then the folder goes.</summary>
    private void Stop()
    {
        _cluster.Stop();
        RemoveFolder(Folder);
    }
}
