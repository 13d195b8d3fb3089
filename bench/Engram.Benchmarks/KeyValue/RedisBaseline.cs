using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// Debian's redis-server as a child process on a free loopback port, driven by redis-benchmark:
/// the baseline the key-value figures are compared with.
/// </summary>
public sealed class RedisBaseline : IAsyncDisposable
{
    private readonly Process _server;
    private readonly string? _dir;

    private RedisBaseline(Process server, int port, string? dir)
    {
        _server = server;
        Port = port;
        _dir = dir;
    }

    public int Port { get; }

    /// <summary>The redis-server process (its CPU time is read from /proc).</summary>
    public int ProcessId => _server.Id;

    /// <summary>Installs Debian's redis-server and redis-tools when they are not on the PATH (needs root).</summary>
    public static Task EnsureInstalledAsync() => Tools.EnsureInstalledAsync(["redis-server", "redis-benchmark"], ["redis-server", "redis-tools"]);

    /// <summary>Starts redis-server; <paramref name="fsyncAlways"/> turns on the AOF with appendfsync always (durable like Engram).</summary>
    public static Task<RedisBaseline> StartAsync(bool fsyncAlways, string dataRoot) => StartAsync(fsyncAlways ? "always" : null, dataRoot);

    /// <summary>
    /// Starts redis-server with the AOF on and <paramref name="appendFsync"/> (<c>always</c>, <c>everysec</c>, <c>no</c>), or
    /// without persistence when it is null. Redis writes the AOF buffer to the file before it sends the replies of a loop
    /// turn, whatever the fsync policy: with <c>everysec</c> or <c>no</c> an acknowledged write survives a kill of the
    /// process (not a power loss), as with Engram's relaxed durability; with <c>always</c> it is synced first, as with full.
    /// </summary>
    public static async Task<RedisBaseline> StartAsync(string? appendFsync, string dataRoot)
    {
        var port = Store.InProcessServer.FreePort();
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string? dir = null;
        foreach (var arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no" })
        {
            start.ArgumentList.Add(arg);
        }
        if (appendFsync is not null)
        {
            dir = Path.Combine(dataRoot, "redis-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            foreach (var arg in new[] { "--appendonly", "yes", "--appendfsync", appendFsync!, "--dir", dir })
            {
                start.ArgumentList.Add(arg);
            }
        }
        else
        {
            start.ArgumentList.Add("--appendonly");
            start.ArgumentList.Add("no");
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start redis-server");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                break;
            }
            catch (SocketException) when (attempt < 100 && !process.HasExited)
            {
                await Task.Delay(50);
            }
        }
        return new RedisBaseline(process, port, dir);
    }

    /// <summary>Runs redis-benchmark for SET and GET; returns ops/s by test name ("SET", "GET").</summary>
    public async Task<IReadOnlyDictionary<string, double>> RunAsync(int clients, int requests, int valueBytes, int keySpace)
    {
        var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-t", "set,get", "-n", requests.ToString(CultureInfo.InvariantCulture),
            "-c", clients.ToString(CultureInfo.InvariantCulture), "-d", valueBytes.ToString(CultureInfo.InvariantCulture),
            "-r", keySpace.ToString(CultureInfo.InvariantCulture), "-q", "--csv",
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start redis-benchmark");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var results = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(',').Select(f => f.Trim('"')).ToArray();
            if (fields.Length >= 2 && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var rps))
            {
                results[fields[0]] = rps;
            }
        }
        return results.Count == 2 ? results : throw new InvalidOperationException("redis-benchmark printed no SET/GET figures: " + output);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_server.HasExited)
        {
            _server.Kill();
            await _server.WaitForExitAsync();
        }
        _server.Dispose();
        if (_dir is not null)
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
