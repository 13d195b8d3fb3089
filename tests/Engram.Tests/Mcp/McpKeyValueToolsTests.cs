using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;
using static Engram.Tests.Mcp.McpMemoryToolsTests;

namespace Engram.Tests.Mcp;

/// <summary>The key-value tools over HTTP with the official C# client: each tool's work and errors, and a scoped key's own namespace.</summary>
public sealed class McpKeyValueToolsTests
{
    [Fact]
    public async Task Every_key_value_tool_does_its_work()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);

        var created = await Ok(client, "kv_set", """{"key":"session:1:state","value":{"step":2,"tags":["a"],"done":false}}""");
        created.GetProperty("created").GetBoolean().Should().BeTrue();
        created.GetProperty("version").GetInt64().Should().Be(1);
        created.GetProperty("ttl_seconds").GetInt64().Should().BeGreaterThan(0, "the default TTL applies");
        var replaced = await Ok(client, "kv_set", """{"key":"session:1:state","value":null,"ttl_seconds":0,"xx":true}""");
        replaced.GetProperty("created").GetBoolean().Should().BeFalse();
        replaced.GetProperty("ttl_seconds").GetInt64().Should().Be(0);
        await Ok(client, "kv_set", """{"key":"session:1:note","value":"draft","nx":true}""");
        await Ok(client, "kv_set", """{"key":"other","value":[1,2.5,"three"]}""");

        var read = await Ok(client, "kv_get", """{"key":"session:1:state"}""");
        read.GetProperty("value").ValueKind.Should().Be(JsonValueKind.Null, "a stored JSON null reads back as null");
        read.GetProperty("expires_at").ValueKind.Should().Be(JsonValueKind.Null);
        (await Ok(client, "kv_get", """{"key":"other"}""")).GetProperty("value").GetRawText().Should().Be("""[1,2.5,"three"]""");

        (await Ok(client, "kv_incr", """{"key":"visits"}""")).GetProperty("value").GetInt64().Should().Be(1);
        var incremented = await Ok(client, "kv_incr", """{"key":"visits","by":-11}""");
        incremented.GetProperty("value").GetInt64().Should().Be(-10);
        incremented.GetProperty("key").GetString().Should().Be("visits");

        var listed = await Ok(client, "kv_list", """{"pattern":"session:*"}""");
        listed.GetProperty("items").EnumerateArray().Select(k => k.GetProperty("key").GetString()).Should().Equal("session:1:note", "session:1:state");
        var keys = new List<string>();
        string? cursor = null;
        do
        {
            var page = await Ok(client, "kv_list", cursor is null ? """{"limit":1}""" : $$"""{"limit":1,"cursor":"{{cursor}}"}""");
            keys.AddRange(page.GetProperty("items").EnumerateArray().Select(k => k.GetProperty("key").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        keys.Should().Equal("other", "session:1:note", "session:1:state", "visits");

        (await Ok(client, "kv_delete", """{"key":"other"}""")).GetProperty("deleted").GetBoolean().Should().BeTrue();
        var cleaned = await Ok(client, "kv_cleanup", """{"pattern":"session:*"}""");
        cleaned.GetProperty("deleted").GetInt32().Should().Be(2);
        cleaned.GetProperty("done").GetBoolean().Should().BeTrue();
        (await Ok(client, "kv_list", "{}")).GetProperty("items").EnumerateArray().Select(k => k.GetProperty("key").GetString()).Should().Equal("visits");
    }

    [Theory]
    [InlineData("kv_set", """{"key":"a"}""", "invalid arguments: value is required")]
    [InlineData("kv_set", """{"value":1}""", "key is required")]
    [InlineData("kv_set", """{"key":"","value":1}""", "key must not be empty")]
    [InlineData("kv_set", """{"key":"a","value":1,"nx":true,"xx":true}""", "nx and xx exclude each other")]
    [InlineData("kv_set", """{"key":"a","value":1,"xx":true}""", "conflict")]
    [InlineData("kv_set", """{"key":"a","value":1,"ttl_seconds":-1}""", "ttl_seconds must be between 0 (no expiry) and")]
    [InlineData("kv_set", """{"key":"a","value":1,"ttl_seconds":"soon"}""", "ttl_seconds must be a whole number (got a string)")]
    [InlineData("kv_set", """{"key":"a","value":1,"nx":"yes"}""", "nx must be true or false (got a string)")]
    [InlineData("kv_set", """{"key":"a","value":"0123456789012345678901234567890123456789012345678901234567890123456789"}""", "the limit is 64")]
    [InlineData("kv_set", """{"key":"a","value":1,"ttl":5}""", "unknown argument 'ttl'; kv_set takes key, value, ttl_seconds, nx, xx")]
    [InlineData("kv_get", """{"key":"missing"}""", "not found: no key 'missing'")]
    [InlineData("kv_get", """{"key":7}""", "key must be a string (got 7)")]
    [InlineData("kv_delete", """{"key":"missing"}""", "not found: no key 'missing'")]
    [InlineData("kv_list", """{"pattern":"[a"}""", "unclosed '['")]
    [InlineData("kv_list", """{"cursor":"!!!"}""", "the cursor is not one this server returned")]
    [InlineData("kv_list", """{"limit":0}""", "limit must be between 1 and 1000 (got 0)")]
    [InlineData("kv_cleanup", """{}""", "pattern is required")]
    [InlineData("kv_cleanup", """{"pattern":"[x"}""", "unclosed '['")]
    [InlineData("kv_incr", """{"key":"n","by":"two"}""", "by must be a whole number (got a string)")]
    [InlineData("kv_incr", """{"key":"n","by":1.5}""", "by must be a whole number (got 1.5)")]
    public async Task A_mistake_is_a_tool_error_with_a_clear_message(string tool, string arguments, string message)
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.KeyValue.MaxValueBytes = 64);
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var result = await client.CallAsync(tool, arguments);
        result.IsError.Should().BeTrue();
        result.Text().Should().Contain(message);
    }

    [Fact]
    public async Task Incrementing_a_value_that_is_not_an_integer_is_a_conflict()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        await Ok(client, "kv_set", """{"key":"name","value":"Ana"}""");
        var result = await client.CallAsync("kv_incr", """{"key":"name"}""");
        result.IsError.Should().BeTrue();
        result.Text().Should().StartWith("conflict").And.Contain("not an integer");
        (await Ok(client, "kv_get", """{"key":"name"}""")).GetProperty("value").GetString().Should().Be("Ana");
    }

    [Fact]
    public async Task A_scoped_key_has_a_key_value_namespace_of_its_own_as_over_rest()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var aliceKey = await server.CreateKeyAsync("acme", Role.Write, new KeyScope("alice", null));
        await using (var adminClient = await McpConnections.ConnectHttpAsync(server, admin))
        {
            await Ok(adminClient, "kv_set", """{"key":"shared","value":"tenant-wide"}""");
        }
        await using var alice = await McpConnections.ConnectHttpAsync(server, aliceKey);
        (await alice.CallAsync("kv_get", """{"key":"shared"}""")).Text().Should().StartWith("not found");
        await Ok(alice, "kv_set", """{"key":"shared","value":"alice's own"}""");
        (await Ok(alice, "kv_list", "{}")).GetProperty("items").GetArrayLength().Should().Be(1);
        (await Ok(alice, "kv_cleanup", """{"pattern":"*"}""")).GetProperty("deleted").GetInt32().Should().Be(1);

        using var rest = server.ClientWithKey(admin);
        using var shared = JsonDocument.Parse(await rest.GetStringAsync("/v1/kv/shared"));
        shared.RootElement.GetProperty("value").GetString().Should().Be("tenant-wide", "the scoped key's writes and cleanup never reached the tenant's key");
    }

    [Fact]
    public async Task A_cleanup_over_http_is_audited_as_the_rest_cleanup_is()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin, name: "ops");
        await using (var client = await McpConnections.ConnectHttpAsync(server, admin))
        {
            await Ok(client, "kv_set", """{"key":"tmp:1","value":1}""");
            (await Ok(client, "kv_cleanup", """{"pattern":"tmp:*"}""")).GetProperty("deleted").GetInt32().Should().Be(1);
        }
        using var rest = server.ClientWithKey(admin);
        using var audit = JsonDocument.Parse(await rest.GetStringAsync("/v1/admin/audit?action=kv.cleanup"));
        var entry = audit.RootElement.GetProperty("items").EnumerateArray().Should().ContainSingle().Subject;
        entry.GetProperty("actor").GetString().Should().Be("key:ops");
        entry.GetProperty("target").GetString().Should().Be("tmp:*");
        entry.GetProperty("detail").GetString().Should().Be("1 deleted");
    }
}
