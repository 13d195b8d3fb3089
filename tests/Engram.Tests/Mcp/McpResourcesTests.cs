using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using static Engram.Tests.Mcp.McpMemoryToolsTests;
using McpRole = ModelContextProtocol.Protocol.Role;
using Role = Engram.Core.Security.Role;

namespace Engram.Tests.Mcp;

/// <summary>The memory resources (recent memories of a scope, statistics) and the prompts (recall, remember).</summary>
public sealed class McpResourcesTests
{
    [Fact]
    public async Task Recent_memories_of_a_scope_and_the_stats_are_readable_resources()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        for (var i = 0; i < 3; i++)
        {
            await Ok(client, "memory_store", $$"""{"content":"Ana note {{i}}","user_id":"ana"}""");
        }
        await Ok(client, "memory_store", """{"content":"Bo note","user_id":"bo","namespace":"music"}""");

        var templates = await client.ListResourceTemplatesAsync();
        templates.Select(t => t.UriTemplate).Should().Contain("memory://recent{?user_id,agent_id,session_id,namespace,limit}");
        templates.Should().OnlyContain(t => !string.IsNullOrWhiteSpace(t.Description));
        var resources = await client.ListResourcesAsync();
        resources.Select(r => r.Uri).Should().Contain("memory://stats");

        var all = Json(await client.ReadResourceAsync("memory://recent"));
        all.GetProperty("items").GetArrayLength().Should().Be(4);
        var ana = Json(await client.ReadResourceAsync("memory://recent?user_id=ana&limit=2"));
        ana.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal("Ana note 2", "Ana note 1");
        ana.GetProperty("next_cursor").GetString().Should().NotBeNull();
        var music = Json(await client.ReadResourceAsync("memory://recent?namespace=music"));
        music.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal("Bo note");

        var stats = Json(await client.ReadResourceAsync("memory://stats"));
        stats.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(4);

        var bad = async () => await client.ReadResourceAsync("memory://recent?limit=many");
        var refused = (await bad.Should().ThrowAsync<McpProtocolException>()).Which;
        refused.Message.Should().Contain("limit must be a whole number");
        refused.ErrorCode.Should().Be(McpErrorCode.InvalidParams);
        var tooMany = async () => await client.ReadResourceAsync("memory://recent?limit=0");
        (await tooMany.Should().ThrowAsync<McpException>()).Which.Message.Should().Contain("limit must be between 1 and");
    }

    [Fact]
    public async Task A_scoped_key_reads_only_its_scope_through_the_resources()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var aliceKey = await server.CreateKeyAsync("acme", Role.Read, new KeyScope("alice", null));
        await using (var adminClient = await McpConnections.ConnectHttpAsync(server, admin))
        {
            await Ok(adminClient, "memory_store", """{"content":"for alice","user_id":"alice"}""");
            await Ok(adminClient, "memory_store", """{"content":"for bob","user_id":"bob"}""");
        }
        await using var alice = await McpConnections.ConnectHttpAsync(server, aliceKey);
        Json(await alice.ReadResourceAsync("memory://recent")).GetProperty("items").EnumerateArray()
            .Select(m => m.GetProperty("content").GetString()).Should().Equal("for alice");
        Json(await alice.ReadResourceAsync("memory://stats")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1);
        var other = async () => await alice.ReadResourceAsync("memory://recent?user_id=bob");
        (await other.Should().ThrowAsync<McpException>()).Which.Message.Should().Contain("forbidden");
    }

    [Fact]
    public async Task The_recall_and_remember_prompts_tell_the_model_which_tools_to_use()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var prompts = await client.ListPromptsAsync();
        prompts.Select(p => p.Name).Should().Contain(["recall", "remember"]);
        foreach (var prompt in prompts.Where(p => p.Name is "recall" or "remember"))
        {
            prompt.Description.Should().NotBeNullOrWhiteSpace();
            prompt.ProtocolPrompt.Arguments.Should().OnlyContain(a => !string.IsNullOrWhiteSpace(a.Description));
        }

        var recall = await client.GetPromptAsync("recall", new Dictionary<string, object?> { ["topic"] = "Ana's travel plans", ["user_id"] = "ana" });
        var recallText = recall.Messages.Single().Content.Should().BeOfType<TextContentBlock>().Subject.Text;
        recall.Messages.Single().Role.Should().Be(McpRole.User);
        recallText.Should().Contain("Ana's travel plans").And.Contain("memory_search").And.Contain("user_id \"ana\"");

        var remember = await client.GetPromptAsync("remember", new Dictionary<string, object?> { ["text"] = "I moved to Lisbon in May" });
        var rememberText = ((TextContentBlock)remember.Messages.Single().Content).Text;
        rememberText.Should().Contain("I moved to Lisbon in May").And.Contain("memory_store").And.Contain("memory_update").And.NotContain("user_id");

        var missing = async () => await client.GetPromptAsync("recall", new Dictionary<string, object?>());
        await missing.Should().ThrowAsync<McpException>();
    }

    private static JsonElement Json(ReadResourceResult result)
    {
        var contents = result.Contents.Should().ContainSingle().Which.Should().BeOfType<TextResourceContents>().Subject;
        contents.MimeType.Should().Be("application/json");
        using var document = JsonDocument.Parse(contents.Text);
        return document.RootElement.Clone();
    }
}
