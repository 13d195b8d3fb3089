using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>The MCP server over both transports with the official C# client: handshake, a write and a read, a user error.</summary>
public sealed class McpFoundationTests
{
    [Fact]
    public async Task Http_store_then_get_returns_the_memory_and_bad_arguments_are_tool_errors()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        client.ServerInfo!.Name.Should().Be("engram");

        var stored = (await client.CallAsync("memory_store", """{"content":"Ana prefers green tea","user_id":"ana"}""")).Structured();
        var id = stored.GetProperty("id").GetString()!;
        var read = (await client.CallAsync("memory_get", $$"""{"id":"{{id}}"}""")).Structured();
        read.GetProperty("content").GetString().Should().Be("Ana prefers green tea");
        read.GetProperty("user_id").GetString().Should().Be("ana");

        var missing = await client.CallAsync("memory_get", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}""");
        missing.IsError.Should().BeTrue();
        missing.Text().Should().StartWith("not found");
        var badTier = await client.CallAsync("memory_store", """{"content":"x","tier":"forever"}""");
        badTier.IsError.Should().BeTrue();
        badTier.Text().Should().Contain("tier must be one of");
    }

    [Fact]
    public async Task Http_uses_the_rest_key_and_a_read_key_cannot_call_a_writing_tool()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var reader = await server.CreateKeyAsync("acme", Role.Read);

        await using (var client = await McpConnections.ConnectHttpAsync(server, admin))
        {
            (await client.CallAsync("memory_store", """{"content":"the deploy runs on Fridays"}""")).Structured();
        }
        await using (var client = await McpConnections.ConnectHttpAsync(server, reader))
        {
            var refused = await client.CallAsync("memory_store", """{"content":"should not land"}""");
            refused.IsError.Should().BeTrue();
            refused.Text().Should().Contain("forbidden");
        }
        var noKey = await server.Client.PostAsync("/mcp", new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/list"}""", System.Text.Encoding.UTF8, "application/json"));
        ((int)noKey.StatusCode).Should().Be(401);
    }

    [Fact]
    public async Task Stdio_in_process_stores_and_reads_back()
    {
        using var data = new TempDirectory();
        await using var client = await McpConnections.ConnectStdioAsync(["--data", data.Path]);
        var stored = (await client.CallAsync("memory_store", """{"content":"Bo plays the cello","agent_id":"a1"}""")).Structured();
        var read = (await client.CallAsync("memory_get", $$"""{"id":"{{stored.GetProperty("id").GetString()}}"}""")).Structured();
        read.GetProperty("agent_id").GetString().Should().Be("a1");
    }
}
