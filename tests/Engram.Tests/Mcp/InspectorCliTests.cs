using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>Smoke test with the MCP Inspector CLI (npm @modelcontextprotocol/inspector-cli): it lists Engram's tools over both transports.</summary>
[Collection(RealClientCollection.Name)]
public sealed class InspectorCliTests
{
    [Fact]
    public async Task Lists_the_tools_over_stdio()
    {
        using var data = new TempDirectory();
        var result = await NodeClients.RunInspectorAsync(["--method", "tools/list", "--", "dotnet", NodeClients.EngramDll, "mcp", "--data", data.Path]);
        ShouldListTheTools(result);
    }

    [Fact]
    public async Task Lists_the_tools_over_streamable_http()
    {
        await using var server = await EngramServer.StartAsync();
        var result = await NodeClients.RunInspectorAsync([new Uri(server.BaseAddress, "/mcp").ToString(), "--method", "tools/list"]);
        ShouldListTheTools(result);
    }

    [Fact]
    public async Task Lists_the_tools_over_streamable_http_with_an_api_key_header()
    {
        await using var server = await EngramServer.StartAsync();
        var reader = await server.CreateKeyAsync("acme", Role.Read);
        var url = new Uri(server.BaseAddress, "/mcp").ToString();

        ShouldListTheTools(await NodeClients.RunInspectorAsync([url, "--method", "tools/list", "--header", "Authorization: Bearer " + reader]));

        var refused = await NodeClients.RunInspectorAsync([url, "--method", "tools/list"]);
        refused.ExitCode.Should().NotBe(0, refused.ToString());
        refused.Stderr.Should().Contain("401", refused.ToString());
    }

    private static void ShouldListTheTools(NodeResult result)
    {
        result.ExitCode.Should().Be(0, result.ToString());
        var tools = result.Json().GetProperty("tools");
        tools.EnumerateArray().Select(t => t.GetProperty("name").GetString()).Should().Contain(["memory_store", "memory_get"], result.ToString());
        tools.EnumerateArray().Should().OnlyContain(t => t.GetProperty("description").GetString()!.Length > 0);
    }
}
