using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Engram.Tests.Support;

/// <summary>
/// One PostgreSQL 15 server process from Debian's <c>postgresql-15</c> package over a data directory in
/// <see cref="Folder"/>: initdb when the folder has none yet, then <c>postgres</c> on a free port of
/// 127.0.0.1 with its unix socket in the folder and trust authentication for the <c>postgres</c> role.
/// PostgreSQL refuses to run as root, so as root (CI) the binaries run as the package's <c>postgres</c>
/// user through setpriv. Shared by the test fixture (<see cref="PostgresServer"/>, a throw-away folder)
/// and the benchmarks (a folder kept between runs, so a loaded database is built once).
/// </summary>
public sealed class PostgresCluster
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private readonly Process _postmaster;

    private PostgresCluster(string folder, int port, Process postmaster)
    {
        Folder = folder;
        Port = port;
        _postmaster = postmaster;
    }

    /// <summary>Holds <c>data/</c> (the cluster) and the unix socket.</summary>
    public string Folder { get; }

    public int Port { get; }

    public bool HasExited => _postmaster.HasExited;

    /// <summary>An Npgsql connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=20";

    /// <summary>The <c>postgres://</c> URL of <paramref name="database"/> (what --store and DATABASE_URL take).</summary>
    public string Url(string database) => $"postgres://postgres@127.0.0.1:{Port}/{database}";

    /// <summary>
    /// Starts a server over <paramref name="folder"/> (created, and initialised by initdb unless it already
    /// holds a cluster) with the given <c>name=value</c> settings, and waits until it takes connections.
    /// <paramref name="port"/>: the port to listen on (a restart on the port clients know), else a free one.
    /// </summary>
    public static async Task<PostgresCluster> StartAsync(string folder, IReadOnlyList<string> settings, int? port = null)
    {
        if (!File.Exists(Path.Combine(BinDirectory, "postgres")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed ({BinDirectory}/postgres is missing): apt-get install postgresql-15, as .ci/run does");
        }
        Directory.CreateDirectory(folder);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            await RunAsync("chown", ["postgres:postgres", folder], asRoot: false, folder);
        }
        var data = Path.Combine(folder, "data");
        if (!File.Exists(Path.Combine(data, "PG_VERSION")))
        {
            await RunAsync(Path.Combine(BinDirectory, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"], asRoot, folder);
        }

        // A port found free can be taken before the postmaster binds it (another test's socket): then it exits with
        // "could not bind", and a cluster on a port of its own choosing starts again on another one.
        for (var attempt = 1; ; attempt++)
        {
            var listenPort = port ?? FreePort();
            List<string> arguments = ["-D", data, "-p", listenPort.ToString(CultureInfo.InvariantCulture), "-k", folder, "-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off"];
            foreach (var setting in settings)
            {
                arguments.Add("-c");
                arguments.Add(setting);
            }
            var postmaster = Process.Start(Command(Path.Combine(BinDirectory, "postgres"), arguments, asRoot, folder))!;
            var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
            postmaster.OutputDataReceived += (_, _) => { };
            postmaster.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line && errors.Count < 200)
                {
                    errors.Enqueue(line);
                }
            };
            postmaster.BeginOutputReadLine();
            postmaster.BeginErrorReadLine();
            var cluster = new PostgresCluster(folder, listenPort, postmaster);

            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(cluster.ConnectionString("postgres") + ";Pooling=false;Timeout=5");
                    await connection.OpenAsync();
                    return cluster;
                }
                catch (Exception ex) when (ex is NpgsqlException or SocketException && DateTime.UtcNow < deadline && !postmaster.HasExited)
                {
                    await Task.Delay(100);
                }
                catch (Exception) when (postmaster.HasExited && port is null && attempt < 3)
                {
                    postmaster.WaitForExit(); // its last lines on stderr are read
                    if (!errors.Any(line => line.Contains("could not bind", StringComparison.Ordinal) || line.Contains("Address already in use", StringComparison.Ordinal)))
                    {
                        throw;
                    }
                    break; // the port was taken: another one
                }
            }
        }
    }

    /// <summary>Fast shutdown (SIGINT: open sessions are ended); the folder stays.</summary>
    public void Stop()
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
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone.
        }
    }

    /// <summary>
    /// Stops a server that a killed process left running over <paramref name="folder"/> (its postmaster.pid
    /// names a live process), so the folder can be started again or removed.
    /// </summary>
    public static void StopLeftover(string folder)
    {
        var pidFile = Path.Combine(folder, "data", "postmaster.pid");
        if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var postmaster) && ProcessAlive(postmaster))
        {
            Signal(postmaster, "-INT");
            for (var waited = 0; waited < 150 && ProcessAlive(postmaster); waited++)
            {
                Thread.Sleep(100);
            }
        }
    }

    public static bool ProcessAlive(int pid)
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
        using var kill = Process.Start("kill", [signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit(5_000);
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
