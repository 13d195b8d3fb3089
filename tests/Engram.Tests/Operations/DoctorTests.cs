using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary><c>engram doctor</c>: the health checks plus configuration problems, each with what to do; exit 0 only when all is well.</summary>
public sealed class DoctorTests
{
    [Fact]
    public async Task InProcess_AllWell_ExitsZero()
    {
        using var data = new TempDirectory();
        (await CliProcess.RunAsync(["add", "a memory", "--data", data.Path])).ExitCode.Should().Be(0);
        var doctor = await CliProcess.RunAsync(["doctor", "--json", "--data", data.Path]);
        doctor.ExitCode.Should().Be(0, doctor.ToString());
        var json = doctor.Json();
        json.GetProperty("healthy").GetBoolean().Should().BeTrue();
        json.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("name").GetString())
            .Should().Contain(["configuration", "tls", "data_folder", "api_keys", "memory_budget", "store", "disk", "index", "embedder"]);
    }

    [Fact]
    public async Task InProcess_ReportsEachProblemWithAFix_AndExitsNonZero()
    {
        using var data = new TempDirectory();
        (await CliProcess.RunAsync(["add", "a memory", "--data", data.Path])).ExitCode.Should().Be(0);
        var doctor = await CliProcess.RunAsync(["doctor", "--data", data.Path, "--urls", "http://0.0.0.0:7070"],
            environment: new Dictionary<string, string> { ["ENGRAM_MEMORY_BUDGET_MB"] = "1", ["READONLY_MODE"] = "true" });
        doctor.ExitCode.Should().Be(1, doctor.ToString());
        doctor.Stdout.Should().Contain("FAIL api_keys").And.Contain("engram keys create");
        doctor.Stdout.Should().Contain("FAIL memory_budget").And.Contain("raise ENGRAM_MEMORY_BUDGET_MB");
        doctor.Stdout.Should().Contain("WARN read_only");
        doctor.Stdout.Should().Contain("fix:").And.Contain("problem(s) found");
    }

    [Fact]
    public async Task InProcess_BadConfigurationAndMissingStore_AreProblems()
    {
        using var data = new TempDirectory();
        var bad = await CliProcess.RunAsync(["doctor", "--data", data.Path], environment: new Dictionary<string, string> { ["ENGRAM_EMBEDDINGS"] = "nonsense" });
        bad.ExitCode.Should().Be(1, bad.ToString());
        bad.Stdout.Should().Contain("FAIL configuration").And.Contain("Engram:Embeddings:Provider");
        bad.Stdout.Should().Contain("FAIL store").And.Contain("no Engram database");
    }

    [Fact]
    public async Task AgainstAServer_UsesItsHealth_AndSeesReadOnlyMode()
    {
        await using var server = await EngramServer.StartAsync();
        var ok = await CliProcess.RunAsync(["doctor", "--server", server.BaseAddress.ToString()]);
        ok.ExitCode.Should().Be(0, ok.ToString());
        ok.Stdout.Should().Contain("store").And.Contain("All is well");

        await server.PostJsonAsync("/v1/admin/readonly", """{"enabled":true}""");
        var readOnly = await CliProcess.RunAsync(["doctor", "--server", server.BaseAddress.ToString()]);
        readOnly.ExitCode.Should().Be(1, readOnly.ToString());
        readOnly.Stdout.Should().Contain("WARN read_only");

        var unreachable = await CliProcess.RunAsync(["doctor", "--server", $"http://127.0.0.1:{EngramServer.FreePort()}"]);
        unreachable.ExitCode.Should().Be(2, unreachable.ToString());
    }
}
