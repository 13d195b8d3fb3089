using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Engram.Tests.Support;

/// <summary>
/// A real PostgreSQL 15 server from Debian's <c>postgresql-15</c> package (.ci/run installs it), one per
/// test run: initdb into a temporary folder, a free port on 127.0.0.1, its unix socket in that folder,
/// trust authentication for the <c>postgres</c> role. Started at first use, stopped (fast shutdown) and
/// removed when the test process exits. Test classes each take a fresh database
/// (<see cref="CreateDatabaseAsync"/>). PostgreSQL refuses to run as root, so as root (CI) the binaries
/// run as the package's <c>postgres</c> user through setpriv; otherwise as the current user.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private static readonly Lazy<Task<PostgresServer>> Shared = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _databases;

    private readonly Lazy<Task<string>> _migratedTemplate;
    private readonly bool _asRoot;
    private Process _postmaster;

    private PostgresServer(string folder, int port, Process postmaster, bool asRoot)
    {
        Folder = folder;
        Port = port;
        _postmaster = postmaster;
        _asRoot = asRoot;
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
    public bool Running => !_postmaster.HasExited;

    /// <summary>
    /// A fast shutdown, as <c>pg_ctl stop -m fast</c> does (SIGINT: open sessions are ended, the server checkpoints and
    /// exits); returns once the postmaster is gone and the port refuses connections.
    /// </summary>
    public async Task StopAsync()
    {
        if (_postmaster.HasExited)
        {
            return;
        }
        Signal(_postmaster.Id, "-INT");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _postmaster.WaitForExitAsync(timeout.Token);
    }

    /// <summary>Starts the server again on the same data folder and port (after <see cref="StopAsync"/>); returns once it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        if (!_postmaster.HasExited)
        {
            return;
        }
        _postmaster.Dispose();
        _postmaster = StartPostmaster(Folder, Port, _asRoot);
        await WaitUntilUpAsync(this, _postmaster);
    }

    public void Dispose() => Stop();

    public string Folder { get; }

    public int Port { get; }

    /// <summary>An Npgsql connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=20";

    /// <summary>The <c>postgres://</c> URL of <paramref name="database"/> (what --store and DATABASE_URL take).</summary>
    public string Url(string database) => $"postgres://postgres@127.0.0.1:{Port}/{database}";

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
        if (!File.Exists(Path.Combine(BinDirectory, "postgres")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed ({BinDirectory}/postgres is missing): apt-get install postgresql-15, as .ci/run does");
        }
        var root = Path.Combine(Path.GetTempPath(), "engram-tests");
        RemoveOrphans(root);
        var folder = Path.Combine(root, $"pg-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            await RunAsync("chown", ["postgres:postgres", folder], asRoot: false, folder);
        }
        var data = Path.Combine(folder, "data");
        await RunAsync(Path.Combine(BinDirectory, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"], asRoot, folder);

        var port = FreePort();
        var postmaster = StartPostmaster(folder, port, asRoot);
        var server = new PostgresServer(folder, port, postmaster, asRoot);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        await WaitUntilUpAsync(server, postmaster);
        return server;
    }

    private static Process StartPostmaster(string folder, int port, bool asRoot)
    {
        var postmaster = Process.Start(Command(Path.Combine(BinDirectory, "postgres"),
        [
            "-D", Path.Combine(folder, "data"), "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-k", folder, "-c", "listen_addresses=127.0.0.1",
            // A throwaway server: durability off, room for every test class's pool at once.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
            "-c", "shared_buffers=64MB", "-c", "logging_collector=off",
        ], asRoot, folder))!;
        postmaster.OutputDataReceived += (_, _) => { };
        postmaster.ErrorDataReceived += (_, _) => { };
        postmaster.BeginOutputReadLine();
        postmaster.BeginErrorReadLine();
        return postmaster;
    }

    private static async Task WaitUntilUpAsync(PostgresServer server, Process postmaster)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(server.ConnectionString("postgres") + ";Pooling=false;Timeout=5");
                await connection.OpenAsync();
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or SocketException && DateTime.UtcNow < deadline && !postmaster.HasExited)
            {
                await Task.Delay(100);
            }
        }
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
            if (parts.Length != 3 || !int.TryParse(parts[1], out var owner) || ProcessAlive(owner))
            {
                continue;
            }
            var pidFile = Path.Combine(folder, "data", "postmaster.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var postmaster) && ProcessAlive(postmaster))
            {
                Signal(postmaster, "-INT");
                Thread.Sleep(1_000);
            }
            RemoveFolder(folder);
        }
    }

    private static bool ProcessAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", [signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit(5_000);
    }

    /// <summary>By a detached rm, which finishes even when the test host is ended right after this returns.</summary>
    private static void RemoveFolder(string folder)
    {
        try
        {
            Process.Start("rm", ["-rf", folder])?.Dispose();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Left for the OS temp cleaner.
        }
    }

    /// <summary>Fast shutdown (SIGINT: open sessions are ended), then the folder goes.</summary>
    private void Stop()
    {
        try
        {
            if (!_postmaster.HasExited)
            {
                Signal(_postmaster.Id, "-INT");
                if (!_postmaster.WaitForExit(15_000))
                {
                    _postmaster.Kill(entireProcessTree: true);
                }
            }
            RemoveFolder(Folder);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Left for the OS temp cleaner.
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static ProcessStartInfo Command(string file, IReadOnlyList<string> arguments, bool asRoot, string workingDirectory)
    {
        var start = new ProcessStartInfo
        {
            FileName = asRoot ? "setpriv" : file,
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asRoot)
        {
            foreach (var a in (ReadOnlySpan<string>)["--reuid=postgres", "--regid=postgres", "--init-groups", "--", file])
            {
                start.ArgumentList.Add(a);
            }
        }
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        start.Environment["LC_ALL"] = "C";
        return start;
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments, bool asRoot, string workingDirectory)
    {
        using var process = Process.Start(Command(file, arguments, asRoot, workingDirectory))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({process.ExitCode}): {await error}{await output}");
        }
    }
}
