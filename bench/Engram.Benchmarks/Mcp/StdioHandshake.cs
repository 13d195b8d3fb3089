using System.Diagnostics;
using System.Text.Json;

namespace Engram.Benchmarks.Mcp;

/// <summary>
/// Times what an MCP client that starts <c>engram mcp</c> waits for: from starting the process to the
/// complete <c>initialize</c> response on stdout, with the request written as soon as the process exists
/// (clients do not wait for the server to be ready). Raw JSON-RPC over the pipes, so no client library
/// start-up is counted. The process is then ended by closing stdin, as clients do.
/// </summary>
public static class StdioHandshake
{
    private const string Initialize =
        """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"engram-bench","version":"1"}}}""";

    public static ProcessStartInfo EngramMcp(string dataPath)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "engram.dll"), "mcp", "--data", dataPath })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("ENGRAM_DATA");
        return start;
    }

    public static async Task<TimeSpan> MeasureAsync(string dataPath)
    {
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(EngramMcp(dataPath)) ?? throw new InvalidOperationException("cannot start engram mcp");
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        await process.StandardInput.WriteLineAsync(Initialize);
        await process.StandardInput.FlushAsync();
        TimeSpan elapsed;
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))
                ?? throw new InvalidOperationException("engram mcp closed stdout before answering initialize");
            using var message = JsonDocument.Parse(line);
            if (message.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number && id.GetInt32() == 1)
            {
                elapsed = clock.Elapsed;
                if (!message.RootElement.TryGetProperty("result", out _))
                {
                    throw new InvalidOperationException("initialize failed: " + line);
                }
                break;
            }
        }
        process.StandardInput.Close();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
        }
        return elapsed;
    }
}
