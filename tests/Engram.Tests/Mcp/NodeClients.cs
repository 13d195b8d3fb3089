using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Engram.Tests.Mcp;

/// <summary>What one run of a Node script printed and returned; its text is the assertion message on failure.</summary>
public sealed record NodeResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The JSON document the script printed on stdout (run-scenarios.mjs prints its summary so).</summary>
    public JsonElement Json()
    {
        using var document = JsonDocument.Parse(Stdout);
        return document.RootElement.Clone();
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// The real npm MCP clients in tests/node (installed by test.sh with npm ci): the scenario harness on the
/// official TypeScript SDK, and the MCP Inspector CLI. Runs them with the <c>node</c> on PATH.
/// </summary>
public static class NodeClients
{
    public static readonly string EngramDll = Path.Combine(AppContext.BaseDirectory, "engram.dll");

    private static readonly Lazy<string> Folder = new(FindFolder);

    /// <summary>tests/node of this checkout; fails (never skips) when it or its node_modules is missing.</summary>
    public static string NodeFolder => Folder.Value;

    public static string Harness => Path.Combine(NodeFolder, "run-scenarios.mjs");

    /// <summary>The Inspector CLI's entry (its package's "bin": mcp-inspector-cli).</summary>
    public static string InspectorCli => Path.Combine(NodeFolder, "node_modules", "@modelcontextprotocol", "inspector-cli", "build", "cli.js");

    /// <summary>Runs run-scenarios.mjs with <paramref name="args"/>; the summary is in <see cref="NodeResult.Json"/>.</summary>
    public static Task<NodeResult> RunScenariosAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) =>
        RunAsync([Harness, .. args], NodeFolder, environment, TimeSpan.FromMinutes(5));

    /// <summary>
    /// Runs the Inspector CLI in its CLI mode. Its working directory is the package's build folder because the
    /// CLI finds its own package.json relative to the working directory (it fails elsewhere in a node_modules).
    /// </summary>
    public static Task<NodeResult> RunInspectorAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) =>
        RunAsync([InspectorCli, "--cli", .. args], Path.GetDirectoryName(InspectorCli)!, environment, TimeSpan.FromMinutes(2));

    public static Task<NodeResult> RunAsync(IReadOnlyList<string> args, string workingDirectory, IReadOnlyDictionary<string, string>? environment,
        TimeSpan timeout) =>
        RunProgramAsync("node", "Node.js 20+ must be on PATH for the MCP client tests", args, workingDirectory, environment, timeout);

    /// <summary>Runs <paramref name="program"/> (node, python3) with its output captured; <paramref name="missing"/> says what to install when it is not there.</summary>
    public static async Task<NodeResult> RunProgramAsync(string program, string missing, IReadOnlyList<string> args, string workingDirectory,
        IReadOnlyDictionary<string, string>? environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // The tests' own environment must not pick a backend or a key for the engram the clients start.
        start.Environment.Remove("ENGRAM_DATA");
        start.Environment.Remove("ENGRAM_SERVER");
        start.Environment.Remove("ENGRAM_API_KEY");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"cannot start `{program}` ({missing}): " + ex.Message, ex);
        }
        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s\n" +
                    new NodeResult(-1, await stdout, await stderr));
            }
            return new NodeResult(process.ExitCode, await stdout, await stderr);
        }
    }

    private static string FindFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "node");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                if (!Directory.Exists(Path.Combine(candidate, "node_modules", "@modelcontextprotocol", "sdk")))
                {
                    throw new InvalidOperationException($"{candidate}/node_modules is missing: run ./test.sh, or (cd tests/node && npm ci), " +
                        "which installs the real MCP clients these tests drive");
                }
                return candidate;
            }
        }
        throw new InvalidOperationException($"no tests/node/package.json above {AppContext.BaseDirectory}: the MCP client tests run from the repository's build output");
    }
}
