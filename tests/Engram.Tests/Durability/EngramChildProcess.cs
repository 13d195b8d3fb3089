using System.Collections.Concurrent;
using System.Diagnostics;
using Engram.Tests.Support;

namespace Engram.Tests.Durability;

/// <summary>
/// The real <c>engram serve</c> executable (engram.dll from the test output folder, run by the
/// dotnet host) as a child process on a free loopback port. Unlike <see cref="EngramServer"/> it
/// can be killed with SIGKILL, which is the point: nothing in the server gets to run on the way out.
/// </summary>
public sealed class EngramChildProcess : IAsyncDisposable
{
    private const int KeptOutputLines = 200;
    private const int SigKill = 9;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private EngramChildProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public int ProcessId => _process.Id;

    /// <summary>
    /// The port the child's RESP endpoint bound, from its start-up log: tests start it with ENGRAM_RESP on port 0, since a
    /// port found free beforehand can be taken before the child binds it (retrying on a new HTTP port would not help).
    /// </summary>
    public int RespPort
    {
        get
        {
            const string Marker = "Redis protocol (RESP) endpoint listening on ";
            var line = _output.FirstOrDefault(l => l.Contains(Marker, StringComparison.Ordinal))
                ?? throw new InvalidOperationException("the child logged no RESP endpoint; output:" + Environment.NewLine + RecentOutput);
            var endpoint = line[(line.IndexOf(Marker, StringComparison.Ordinal) + Marker.Length)..].Trim();
            return System.Net.IPEndPoint.Parse(endpoint).Port;
        }
    }

    /// <summary>"running" or how it ended, for failure messages.</summary>
    public string State => _process.HasExited ? $"exited with code {_process.ExitCode}" : "running";

    /// <summary>The last lines the child wrote to stdout and stderr, for failure messages.</summary>
    public string RecentOutput => string.Join(Environment.NewLine, _output);

    /// <summary>
    /// Starts <c>engram serve --data <paramref name="dataPath"/></c> and waits until <c>/health</c> says ok.
    /// Retries on a new port when the one picked was taken in the meantime (other test runs share the machine).
    /// </summary>
    public static async Task<EngramChildProcess> StartAsync(string dataPath, TimeSpan healthTimeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        const int attempts = 3;
        for (var attempt = 1; ; attempt++)
        {
            var child = Launch(dataPath, EngramServer.FreePort(), environment);
            var failure = await child.WaitForHealthAsync(healthTimeout);
            if (failure is null)
            {
                return child;
            }
            var output = child.RecentOutput;
            await child.DisposeAsync();
            if (attempt < attempts && output.Contains("already in use", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            throw new InvalidOperationException(
                $"engram serve did not come up on {child.BaseAddress}: {failure}{Environment.NewLine}--- child output ---{Environment.NewLine}{output}");
        }
    }

    private static EngramChildProcess Launch(string dataPath, int port, IReadOnlyDictionary<string, string>? environment)
    {
        var engramDll = Path.Combine(AppContext.BaseDirectory, "engram.dll");
        if (!File.Exists(engramDll))
        {
            throw new FileNotFoundException("engram.dll is not in the test output folder; the test project must reference src/Engram", engramDll);
        }
        var url = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var arg in (ReadOnlySpan<string>)[engramDll, "serve", Core.Storage.StoreFactory.IsPostgres(dataPath) ? "--store" : "--data", dataPath, "--urls", url])
        {
            start.ArgumentList.Add(arg);
        }
        // Per-request info logs would only slow the child down and flood the pipe.
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";
        start.Environment["Logging__LogLevel__Engram.Server"] = "Information"; // the start-up summary with the bound address
        start.Environment.Remove("ENGRAM_DATA");
        // As in EngramServer: readiness by the code under test, not by how full the CI machine's disk is.
        start.Environment["Engram__Health__MinFreeDiskMB"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var child = new EngramChildProcess(process, new Uri(url));
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The dotnet host running this test (the SDK sets DOTNET_HOST_PATH), else the one on PATH.</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath))
        {
            return hostPath;
        }
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }
        return "dotnet";
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        while (_output.Count > KeptOutputLines && _output.TryDequeue(out _))
        {
        }
    }

    /// <summary>Null when healthy; otherwise why not.</summary>
    private async Task<string?> WaitForHealthAsync(TimeSpan timeout)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        string last = "no answer yet";
        while (deadline.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                return $"the process exited with code {_process.ExitCode}";
            }
            // Until the child says it listens, a healthy answer on its port comes from someone else:
            // another server that picked the same free port between our probe and the child's bind.
            if (!_output.Any(line => line.Contains("listening: ", StringComparison.Ordinal) && line.Contains(BaseAddress.Authority, StringComparison.Ordinal)))
            {
                await Task.Delay(50);
                continue;
            }
            try
            {
                using var response = await client.GetAsync("/health");
                var body = await response.Content.ReadAsStringAsync();
                if (response.IsSuccessStatusCode && body.Contains("\"ok\"", StringComparison.Ordinal))
                {
                    return null;
                }
                last = $"{(int)response.StatusCode}: {body}";
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                last = ex.Message;
            }
            await Task.Delay(50);
        }
        return $"no healthy answer within {timeout.TotalSeconds:0}s (last: {last})";
    }

    /// <summary>
    /// Sends SIGKILL and waits for the process to be gone. Returns the exit code, which .NET reports
    /// as 128 + signal for a signalled process: 137 proves it was SIGKILL and not a clean exit.
    /// </summary>
    public async Task<int> KillNineAsync()
    {
        // Process.Kill() on Unix is kill(pid, SIGKILL); the exit code checked by the caller confirms it.
        _process.Kill(entireProcessTree: false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    public static int SigKillExitCode => 128 + SigKill;

    /// <summary>Sends SIGTERM (what a service manager sends to stop it) without waiting.</summary>
    public void Terminate()
    {
        if (Kill(_process.Id, SigTerm) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Waits for the process to exit on its own; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    private const int SigTerm = 15;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        _process.Dispose();
    }
}
