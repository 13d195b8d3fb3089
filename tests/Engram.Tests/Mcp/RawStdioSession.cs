using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Engram.Tests.Mcp;

/// <summary>
/// A real <c>engram mcp</c> process driven with raw JSON-RPC lines, keeping every line it writes to
/// stdout and stderr, so tests can check that stdout carries nothing but protocol messages.
/// </summary>
internal sealed class RawStdioSession : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly StringBuilder _stderr = new();
    private readonly Task _stderrPump;

    private RawStdioSession(Process process)
    {
        _process = process;
        _stderrPump = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(line);
                }
            }
        });
    }

    /// <summary>The <c>engram mcp</c> process's id (tests read its /proc entries).</summary>
    public int ProcessId => _process.Id;

    /// <summary>Every line written to stdout so far.</summary>
    public IReadOnlyList<string> StdoutLines => _stdout;

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static RawStdioSession Start(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "engram.dll"));
        start.ArgumentList.Add("mcp");
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("ENGRAM_DATA");
        start.Environment.Remove("ENGRAM_SERVER");
        start.Environment.Remove("ENGRAM_API_KEY");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        return new RawStdioSession(Process.Start(start)!);
    }

    public async Task SendAsync(string json)
    {
        await _process.StandardInput.WriteLineAsync(json);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>Sends a request and reads stdout until its response; every line read must be a JSON-RPC message.</summary>
    public async Task<JsonElement> RequestAsync(int id, string method, string paramsJson)
    {
        await SendAsync($$"""{"jsonrpc":"2.0","id":{{id}},"method":"{{method}}","params":{{paramsJson}}}""");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var line = await _process.StandardOutput.ReadLineAsync(timeout.Token)
                ?? throw new InvalidOperationException($"engram mcp closed stdout; stderr:\n{Stderr}");
            _stdout.Add(line);
            using var message = JsonDocument.Parse(line); // anything that is not JSON fails the test here
            message.RootElement.GetProperty("jsonrpc").GetString().Should().Be("2.0", "stdout carries only JSON-RPC messages");
            if (message.RootElement.TryGetProperty("id", out var got) && got.ValueKind == JsonValueKind.Number && got.GetInt32() == id)
            {
                return message.RootElement.Clone();
            }
        }
    }

    public Task<JsonElement> InitializeAsync() =>
        RequestAsync(1, "initialize", """{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw-test","version":"1"}}""");

    /// <summary>Closes stdin (how clients end a stdio server), waits for the exit and returns what stdout still had.</summary>
    public async Task<string> CloseAsync()
    {
        _process.StandardInput.Close();
        var rest = await _process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
        await _stderrPump;
        return rest;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
