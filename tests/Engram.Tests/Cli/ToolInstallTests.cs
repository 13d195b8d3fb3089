using System.Diagnostics;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>
/// tools/install.sh for real: packs the build the tests run against, installs the tool into a temporary
/// tool path and runs the installed <c>engram</c> (its settings file, native SQLite and built-in model
/// must have come along in the package).
/// </summary>
public sealed class ToolInstallTests
{
    [Fact]
    public async Task Install_script_packs_and_installs_a_working_engram_tool()
    {
        using var temp = new TempDirectory();
        var tools = Path.Combine(temp.Path, "tools");
        var packages = Path.Combine(temp.Path, "packages");
        var data = Path.Combine(temp.Path, "data");
        // The configuration these tests were built in (bin/<Configuration>/net10.0/), packed without building again.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

        var install = await RunAsync("bash", [Path.Combine(RepositoryRoot(), "tools", "install.sh"),
            "--tool-path", tools, "--packages", packages, "--configuration", configuration, "--no-build"]);
        install.ExitCode.Should().Be(0, install.ToString());
        install.Stdout.Should().Contain("Tool 'engram' (version '0.1.0-local.");

        var engram = Path.Combine(tools, "engram");
        var version = await RunAsync(engram, ["--version"]);
        version.ExitCode.Should().Be(0, version.ToString());
        version.Stdout.Should().StartWith("0.1.0");

        var added = await RunAsync(engram, ["add", "The deploy key lives in the vault", "--user", "alice", "--data", data, "--json"]);
        added.ExitCode.Should().Be(0, added.ToString());
        var id = added.Json().GetProperty("id").GetString();
        var listed = await RunAsync(engram, ["list", "--user", "alice", "--data", data, "--json"]);
        listed.ExitCode.Should().Be(0, listed.ToString());
        listed.Json().GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().Equal(id);

        // Search embeds the query with the built-in model, which lives inside Engram.Core.dll.
        var found = await RunAsync(engram, ["search", "where is the deploy key", "--data", data, "--json"]);
        found.ExitCode.Should().Be(0, found.ToString());
        found.Json().GetProperty("results")[0].GetProperty("id").GetString().Should().Be(id);

        Directory.EnumerateFiles(Path.Combine(tools, ".store"), "appsettings.json", SearchOption.AllDirectories)
            .Should().Contain(p => p.Contains(Path.Combine("tools", "net10.0", "any"), StringComparison.Ordinal));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engram.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Engram.slnx not found above " + AppContext.BaseDirectory);
    }

    private static async Task<CliResult> RunAsync(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("ENGRAM_DATA");
        start.Environment.Remove("ENGRAM_SERVER");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
