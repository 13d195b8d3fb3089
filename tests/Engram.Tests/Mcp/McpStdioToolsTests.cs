using System.Text.Json;
using Engram.Tests.Support;
using ModelContextProtocol.Protocol;
using static Engram.Tests.Mcp.McpMemoryToolsTests;

namespace Engram.Tests.Mcp;

/// <summary>The memory and key-value tools, a resource and a prompt over stdio, through a real <c>engram mcp</c> process on a data folder.</summary>
public sealed class McpStdioToolsTests
{
    [Fact]
    public async Task Memory_and_key_value_tools_resources_and_prompts_work_over_stdio()
    {
        using var data = new TempDirectory();
        await using var client = await McpConnections.ConnectStdioAsync(["--data", data.Path]);

        var id = (await Ok(client, "memory_store", """{"content":"Ana prefers green tea","user_id":"ana","source":"chat"}""")).GetProperty("id").GetString()!;
        await Ok(client, "memory_store", """{"content":"Bo plays the cello","user_id":"bo"}""");
        var search = await Ok(client, "memory_search", """{"query":"green tea","user_id":"ana"}""");
        search.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Equal(id);
        var updated = await Ok(client, "memory_update", $$"""{"id":"{{id}}","source":null,"expected_version":1}""");
        updated.GetProperty("source").ValueKind.Should().Be(JsonValueKind.Null);
        updated.GetProperty("content").GetString().Should().Be("Ana prefers green tea");
        (await client.CallAsync("memory_get", $$"""{"id":"{{id}}","user_id":"bo"}""")).Text().Should().StartWith("not found");
        (await Ok(client, "memory_list", """{"user_id":"bo"}""")).GetProperty("items").GetArrayLength().Should().Be(1);
        (await Ok(client, "memory_history", $$"""{"id":"{{id}}"}""")).GetProperty("items").GetArrayLength().Should().Be(2);
        (await Ok(client, "memory_stats", """{"user_id":"ana"}""")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1);
        (await Ok(client, "memory_delete", $$"""{"id":"{{id}}"}""")).GetProperty("deleted").GetBoolean().Should().BeTrue();

        await Ok(client, "kv_set", """{"key":"job:1","value":{"state":"running"}}""");
        (await Ok(client, "kv_get", """{"key":"job:1"}""")).GetProperty("value").GetProperty("state").GetString().Should().Be("running");
        (await Ok(client, "kv_incr", """{"key":"job:count","by":3}""")).GetProperty("value").GetInt64().Should().Be(3);
        (await Ok(client, "kv_list", """{"pattern":"job:*"}""")).GetProperty("items").GetArrayLength().Should().Be(2);
        (await Ok(client, "kv_cleanup", """{"pattern":"job:*"}""")).GetProperty("deleted").GetInt32().Should().Be(2);
        (await client.CallAsync("kv_delete", """{"key":"job:1"}""")).Text().Should().StartWith("not found");
        (await client.CallAsync("kv_set", """{"key":"a","value":1,"nx":true,"xx":true}""")).IsError.Should().BeTrue();

        var recent = await client.ReadResourceAsync("memory://recent?user_id=bo");
        ((TextResourceContents)recent.Contents.Single()).Text.Should().Contain("Bo plays the cello");
        var prompt = await client.GetPromptAsync("recall", new Dictionary<string, object?> { ["topic"] = "cello" });
        ((TextContentBlock)prompt.Messages.Single().Content).Text.Should().Contain("memory_search");
    }

    [Fact]
    public async Task Text_that_is_not_valid_unicode_is_invalid_params_over_stdio_too_with_nothing_on_stderr()
    {
        using var data = new TempDirectory();
        await using var session = RawStdioSession.Start(["--data", data.Path]);
        await session.InitializeAsync();
        await session.SendAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""");
        var refused = await session.RequestAsync(2, "tools/call", """{"name":"memory_store","arguments":{"content":"\ud800"}}""");
        var error = refused.GetProperty("error");
        error.GetProperty("code").GetInt32().Should().Be(-32602, refused.ToString());
        error.GetProperty("message").GetString().Should().StartWith("arguments.content is not valid Unicode");
        var stored = await session.RequestAsync(3, "tools/call", """{"name":"memory_store","arguments":{"content":"a pair \ud83d\ude00 is fine"}}""");
        stored.GetProperty("result").GetProperty("content")[0].GetProperty("text").GetString().Should().Contain("a pair");
        await session.CloseAsync();
        session.Stderr.Should().NotContain("UTF-16").And.NotContain("   at ");
    }

    [Fact]
    public async Task A_line_that_is_not_a_message_is_answered_with_id_null_and_the_session_goes_on()
    {
        // A probe (session 41): the SDK's stdio transport skipped such lines without an answer, so a client waited for ever.
        using var data = new TempDirectory();
        await using var session = RawStdioSession.Start(["--data", data.Path]);
        await session.InitializeAsync();
        foreach (var line in new[]
                 {
                     "garbage", "{", "null", "[]", """{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}""", "", "   ",
                     """{"jsonrpc":"2.0","id":7,"method":5}""", """{"id":8,"method":"ping"}""", """{"jsonrpc":"2.0","id":1.5,"method":"ping"}""",
                 })
        {
            await session.SendAsync(line);
        }
        var pong = await session.RequestAsync(2, "ping", "{}");
        pong.GetProperty("result").ValueKind.Should().Be(JsonValueKind.Object);

        var answers = session.StdoutLines.Skip(1).SkipLast(1).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        answers.Select(a => a.GetProperty("error").GetProperty("code").GetInt32()).Should().Equal(-32700, -32700, -32600, -32600, -32600, -32600, -32600, -32600);
        answers.Should().OnlyContain(a => a.GetProperty("id").ValueKind == JsonValueKind.Null);
        answers.Select(a => a.GetProperty("error").GetProperty("message").GetString()).Skip(4).Should().Equal(
            "Invalid Request: id must be a string, an integer or null, not an object",
            "Invalid Request: method must be a string, not a number",
            "Invalid Request: jsonrpc must be the string 2.0",
            "Invalid Request: id must be a string, an integer or null, not a fraction or a number past 64 bits");
        await session.CloseAsync();
        session.Stderr.Should().NotContain("   at ");
    }
}
