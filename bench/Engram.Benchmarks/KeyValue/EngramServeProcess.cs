using System.Collections.Concurrent;
using System.Diagnostics;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// The real <c>engram serve</c> (engram.dll from this benchmark's output folder, run by the dotnet
/// host) as a child process on a free loopback port: measured the way redis-server is, as its own
/// process with its own runtime, not hosted inside the benchmark that also ran the in-process cells.
/// </summary>
public sealed class EngramServeProcess : IAsyncDisposable
{
    private const int KeptOutputLines = 50;

    private readonly Process _process;

    private EngramServeProcess(Process process, string url)
    {
        _process = process;
        Url = url;
    }

    public string Url { get; }

    public int ProcessId => _process.Id;

    /// <param name="store">A PostgreSQL URL (<c>--store</c>); the data folder then holds only this instance's own files.</param>
    /// <param name="startTimeout">How long /health may take to answer ok (an index built from a large store takes a while); 60 s when not given.</param>
    public static async Task<EngramServeProcess> StartAsync(string dataPath, IReadOnlyDictionary<string, string> environment, string? store = null,
        TimeSpan? startTimeout = null)
    {
        var engramDll = Path.Combine(AppContext.BaseDirectory, "engram.dll");
        var url = $"http://127.0.0.1:{Store.InProcessServer.FreePort()}";
        var start = new ProcessStartInfo(Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in store is null ? [engramDll, "serve", "--data", dataPath, "--urls", url] : new[] { engramDll, "serve", "--data", dataPath, "--store", store, "--urls", url })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start engram serve");
        // The last lines, for the message when it does not come up (a refusal names its reason there).
        var recent = new ConcurrentQueue<string>();
        void Keep(string? line)
        {
            if (line is { Length: > 0 })
            {
                recent.Enqueue(line);
                while (recent.Count > KeptOutputLines && recent.TryDequeue(out _))
                {
                }
            }
        }
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) =>
        {
            Keep(e.Data);
            if (e.Data is { Length: > 0 } line)
            {
                Console.Error.WriteLine("engram serve: " + line);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        var timeout = startTimeout ?? TimeSpan.FromSeconds(60);
        while (deadline.Elapsed < timeout)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync(); // the output read to its end
                throw new EngramServeExitedException(process.ExitCode, string.Join(Environment.NewLine, recent));
            }
            try
            {
                if ((await client.GetAsync("/health")).IsSuccessStatusCode)
                {
                    return new EngramServeProcess(process, url);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        process.Kill();
        throw new InvalidOperationException($"engram serve did not answer /health within {timeout.TotalSeconds:0} s");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}

/// <summary><c>engram serve</c> ended before it answered /health; <see cref="Output"/> holds its last lines.</summary>
public sealed class EngramServeExitedException(int exitCode, string output)
    : Exception($"engram serve exited with {exitCode}: {output}")
{
    public int ExitCode { get; } = exitCode;

    public string Output { get; } = output;
}
