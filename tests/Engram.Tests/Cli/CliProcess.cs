using System.Diagnostics;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>What one run of the <c>engram</c> executable printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout as the single JSON document <c>--json</c> promises (parsing fails the test otherwise).</summary>
    public JsonElement Json()
    {
        using var document = JsonDocument.Parse(Stdout);
        return document.RootElement.Clone();
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the real <c>engram</c> executable (engram.dll, copied next to the tests by the project
/// reference) as a child process, so tests see exactly what a user or a script sees.
/// </summary>
public static class CliProcess
{
    private static readonly string EngramDll = Path.Combine(AppContext.BaseDirectory, "engram.dll");

    public static async Task<CliResult> RunAsync(IEnumerable<string> args, string? stdin = null, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        // Without a folder of its own, a folder that is this run's alone: a command given no --data uses ./data, and a
        // shared working folder (/tmp) let one run's leftovers (an index snapshot of another store) fail the next.
        using var ownFolder = workingDirectory is null ? new TempDirectory() : null;
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? ownFolder!.Path,
        };
        start.ArgumentList.Add(EngramDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // The tests' own environment must not pick a backend for the child.
        start.Environment.Remove("ENGRAM_DATA");
        start.Environment.Remove("ENGRAM_SERVER");
        start.Environment.Remove("ENGRAM_API_KEY");
        start.Environment.Remove("DATABASE_URL");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"engram {string.Join(' ', args)} did not finish within 60 s");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
