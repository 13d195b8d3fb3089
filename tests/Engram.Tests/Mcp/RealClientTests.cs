using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>
/// The official MCP TypeScript SDK client (tests/node/run-scenarios.mjs) runs every scenario file in
/// tests/node/scenarios against a real Engram over each way a client can reach it: stdio in process,
/// Streamable HTTP (open and with an API key) and the stdio proxy to a server. Each step's result is checked
/// and every tool the server lists must have passed an "ok" and an "error" step.
/// </summary>
[Collection(RealClientCollection.Name)]
public sealed class RealClientTests
{
    [Fact]
    public async Task Stdio_in_process_passes_every_scenario()
    {
        var result = await NodeClients.RunScenariosAsync(["--engram", NodeClients.EngramDll]);
        ShouldPass(result, "stdio");
    }

    [Fact]
    public async Task Streamable_http_open_mode_passes_every_scenario()
    {
        await using var server = await EngramServer.StartAsync();
        var result = await NodeClients.RunScenariosAsync(["--url", new Uri(server.BaseAddress, "/mcp").ToString()]);
        ShouldPass(result, "streamable-http");
    }

    [Fact]
    public async Task Streamable_http_with_an_api_key_passes_every_scenario_and_a_wrong_key_cannot_connect()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var url = new Uri(server.BaseAddress, "/mcp").ToString();

        ShouldPass(await NodeClients.RunScenariosAsync(["--url", url, "--key", admin]), "streamable-http");

        var refused = await NodeClients.RunScenariosAsync(["--url", url, "--key", "egm_not-a-key"]);
        refused.ExitCode.Should().Be(2, refused.ToString());
        refused.Json().GetProperty("failed")[0].GetProperty("reason").GetString().Should().Contain("401", refused.ToString());
    }

    [Fact]
    public async Task Stdio_proxy_to_a_server_passes_every_scenario()
    {
        await using var server = await EngramServer.StartAsync();
        var result = await NodeClients.RunScenariosAsync(
            ["--stdio", "--", "dotnet", NodeClients.EngramDll, "mcp", "--server", server.BaseAddress.ToString(), "--tenant", "{tenant}"]);
        ShouldPass(result, "stdio");
    }

    [Fact]
    public async Task Stdio_proxy_with_the_key_from_ENGRAM_API_KEY_passes_every_scenario()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var result = await NodeClients.RunScenariosAsync(
            ["--stdio", "--", "dotnet", NodeClients.EngramDll, "mcp", "--server", server.BaseAddress.ToString(), "--tenant", "{tenant}"],
            new Dictionary<string, string> { ["ENGRAM_API_KEY"] = admin });
        ShouldPass(result, "stdio");
    }

    [Fact]
    public async Task The_harness_fails_with_the_list_of_failed_steps_and_coverage_gaps()
    {
        using var folder = new TempDirectory();
        var scenario = Path.Combine(folder.Path, "wrong.json");
        await File.WriteAllTextAsync(scenario, """
            [
              { "tool": "memory_store", "args": { "content": "fine" }, "expect": "error" },
              { "tool": "memory_get", "args": { "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV" }, "expect": "ok" },
              { "tool": "no_such_tool", "args": {}, "expect": "ok" }
            ]
            """);
        var result = await NodeClients.RunScenariosAsync(["--engram", NodeClients.EngramDll, "--file", scenario]);

        result.ExitCode.Should().Be(1, result.ToString());
        var summary = result.Json();
        summary.GetProperty("ok").GetBoolean().Should().BeFalse();
        var failed = summary.GetProperty("failed").EnumerateArray().Select(f => (f.GetProperty("step").GetInt32(), f.GetProperty("reason").GetString())).ToList();
        failed.Should().HaveCount(3, result.ToString());
        failed[0].Item2.Should().Contain("expected a tool error, got ok");
        failed[1].Item2.Should().Contain("not found");
        failed[2].Item2.Should().Contain("does not list the tool no_such_tool");
        summary.GetProperty("coverageGaps").EnumerateArray().Select(g => g.GetString())
            .Should().Contain("memory_store has no passing \"error\" step");
        result.Stderr.Should().Contain("FAILED wrong.json step 2 (memory_get, expect ok)");
    }

    /// <summary>Exit 0, ok, and the steps really ran through the tools the server lists (the foundation's at least).</summary>
    private static void ShouldPass(NodeResult result, string transport)
    {
        result.ExitCode.Should().Be(0, result.ToString());
        var summary = result.Json();
        summary.GetProperty("ok").GetBoolean().Should().BeTrue(result.ToString());
        summary.GetProperty("transport").GetString().Should().Be(transport);
        summary.GetProperty("server").GetProperty("name").GetString().Should().Be("engram");
        var tools = summary.GetProperty("tools").EnumerateArray().Select(t => t.GetString()).ToList();
        tools.Should().Contain(["memory_store", "memory_get"]);
        summary.GetProperty("stepsRun").GetInt32().Should().BeGreaterThan(tools.Count * 2 - 1, result.ToString());
        foreach (var tool in tools)
        {
            var coverage = summary.GetProperty("coverage").GetProperty(tool!);
            coverage.GetProperty("ok").GetInt32().Should().BePositive(tool);
            coverage.GetProperty("error").GetInt32().Should().BePositive(tool);
        }
    }
}

/// <summary>The tests that start Node clients and engram processes run one at a time: each starts several processes.</summary>
[CollectionDefinition(Name)]
public sealed class RealClientCollection
{
    public const string Name = "Real MCP clients";
}
