using System.Diagnostics;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// The real <c>engram serve</c> (engram.dll from this benchmark's output folder, run by the dotnet
/// host) as a child process on a free loopback port: measured the way redis-server is, as its own
/// process with its own runtime, not hosted inside the benchmark that also ran the in-process cells.
/// </summary>
public sealed class EngramServeProcess : IAsyncDisposable
{
    private readonly Process _process;

    private EngramServeProcess(Process process, string url)
    {
        _process = process;
        Url = url;
    }

    public string Url { get; }

    public static async Task<EngramServeProcess> StartAsync(string dataPath, IReadOnlyDictionary<string, string> environment)
    {
        var engramDll = Path.Combine(AppContext.BaseDirectory, "engram.dll");
        var url = $"http://127.0.0.1:{Store.InProcessServer.FreePort()}";
        var start = new ProcessStartInfo(Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { engramDll, "serve", "--data", dataPath, "--urls", url })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start engram serve");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                Console.Error.WriteLine("engram serve: " + line);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"engram serve exited with {process.ExitCode}");
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
        throw new InvalidOperationException("engram serve did not answer /health within 60 s");
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
