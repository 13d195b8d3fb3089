using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;
using ModelContextProtocol.Client;

namespace Engram.Tests.Mcp;

/// <summary>
/// The memory tools over Streamable HTTP with the official C# client: each tool's work, the scope
/// arguments (filters for search, list and stats; a must-match for the tools that take an id), a
/// scoped API key confined as over REST, and a clear tool error for every mistake a model makes.
/// </summary>
public sealed class McpMemoryToolsTests
{
    private const string MissingId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    [Fact]
    public async Task Every_memory_tool_does_its_work()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);

        var tea = await Ok(client, "memory_store", """{"content":"Ana prefers green tea in the morning","type":"preference","user_id":"ana","tags":["drinks"],"source":"chat"}""");
        var teaId = tea.GetProperty("id").GetString()!;
        await Ok(client, "memory_store", """{"content":"Bo plays the cello on Sundays","user_id":"bo","namespace":"hobbies"}""");

        var found = await Ok(client, "memory_search", """{"query":"what does Ana drink","k":1,"user_id":"ana","filters":{"type":["preference"],"tags":["drinks"]},"explain":true}""");
        var hit = found.GetProperty("results").EnumerateArray().Single();
        hit.GetProperty("id").GetString().Should().Be(teaId);
        hit.GetProperty("score").GetDouble().Should().BeGreaterThan(0);
        hit.TryGetProperty("explain", out _).Should().BeTrue();
        hit.TryGetProperty("embedding", out _).Should().BeFalse();
        found.TryGetProperty("took_ms", out _).Should().BeTrue();
        var lexicalOnly = await Ok(client, "memory_search", """{"query":"cello","weights":{"semantic":0,"recency":0,"importance":0,"entity":0}}""");
        lexicalOnly.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("content").GetString()).Should().Equal("Bo plays the cello on Sundays");

        // Update: what is left out stays, null clears, expected_version guards.
        var updated = await Ok(client, "memory_update", $$"""{"id":"{{teaId}}","content":"Ana prefers oolong tea in the morning","source":null,"expected_version":1}""");
        updated.GetProperty("version").GetInt64().Should().Be(2);
        updated.GetProperty("content").GetString().Should().Be("Ana prefers oolong tea in the morning");
        updated.GetProperty("source").ValueKind.Should().Be(JsonValueKind.Null);
        updated.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("drinks");
        updated.GetProperty("type").GetString().Should().Be("preference");
        var tagsCleared = await Ok(client, "memory_update", $$"""{"id":"{{teaId}}","tags":null,"importance":0.9}""");
        tagsCleared.GetProperty("tags").GetArrayLength().Should().Be(0);
        tagsCleared.GetProperty("importance").GetDouble().Should().Be(0.9);
        tagsCleared.GetProperty("content").GetString().Should().Be("Ana prefers oolong tea in the morning");

        var read = await Ok(client, "memory_get", $$"""{"id":"{{teaId}}","user_id":"ana"}""");
        read.GetProperty("version").GetInt64().Should().Be(3);

        var history = await Ok(client, "memory_history", $$"""{"id":"{{teaId}}"}""");
        history.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("event").GetString()).Should().Equal("created", "updated", "updated");

        var all = await Ok(client, "memory_stats", "{}");
        all.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(2);

        var deleted = await Ok(client, "memory_delete", $$"""{"id":"{{teaId}}","user_id":"ana"}""");
        deleted.GetProperty("deleted").GetBoolean().Should().BeTrue();
        deleted.GetProperty("id").GetString().Should().Be(teaId);
        (await client.CallAsync("memory_get", $$"""{"id":"{{teaId}}"}""")).IsError.Should().BeTrue();
        var afterDelete = await Ok(client, "memory_history", $$"""{"id":"{{teaId}}","user_id":"ana"}""");
        afterDelete.GetProperty("items").EnumerateArray().Last().GetProperty("event").GetString().Should().Be("deleted");
    }

    [Fact]
    public async Task List_pages_with_the_cursor_and_filters()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        for (var i = 0; i < 5; i++)
        {
            await Ok(client, "memory_store", $$"""{"content":"note number {{i}}","namespace":"notes","tier":"{{(i % 2 == 0 ? "working" : "long_term")}}"}""");
        }
        await Ok(client, "memory_store", """{"content":"elsewhere","namespace":"other"}""");

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var args = cursor is null ? """{"namespace":"notes","limit":2}""" : $$"""{"namespace":"notes","limit":2,"cursor":"{{cursor}}"}""";
            var page = await Ok(client, "memory_list", args);
            page.GetProperty("items").GetArrayLength().Should().BeLessThanOrEqualTo(2);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        seen.Should().BeEquivalentTo(Enumerable.Range(0, 5).Select(i => $"note number {i}"));
        seen.Should().Equal(seen.OrderByDescending(s => s), "newest first");

        var working = await Ok(client, "memory_list", """{"namespace":"notes","filters":{"tier":["working"]}}""");
        working.GetProperty("items").GetArrayLength().Should().Be(3);
    }

    [Fact]
    public async Task Scope_arguments_filter_search_list_and_stats_and_must_match_for_id_tools()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var ana = (await Ok(client, "memory_store", """{"content":"Ana's flight to Lisbon leaves at nine","user_id":"ana","agent_id":"planner","session_id":"s1","namespace":"travel"}""")).GetProperty("id").GetString()!;
        var bo = (await Ok(client, "memory_store", """{"content":"Bo's flight to Lisbon leaves at ten","user_id":"bo","namespace":"travel"}""")).GetProperty("id").GetString()!;

        var search = await Ok(client, "memory_search", """{"query":"flight to Lisbon","user_id":"bo"}""");
        search.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Equal(bo);
        var bySession = await Ok(client, "memory_search", """{"query":"flight to Lisbon","session_id":"s1"}""");
        bySession.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Equal(ana);
        var list = await Ok(client, "memory_list", """{"agent_id":"planner"}""");
        list.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Equal(ana);
        var both = await Ok(client, "memory_list", """{"namespace":"travel"}""");
        both.GetProperty("items").GetArrayLength().Should().Be(2);
        (await Ok(client, "memory_stats", """{"user_id":"ana"}""")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1);
        (await Ok(client, "memory_stats", """{"namespace":"travel"}""")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(2);
        (await Ok(client, "memory_stats", """{"namespace":"work"}""")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(0);

        // An id with a scope argument that is not the memory's: the same answer as a missing id, and nothing changes.
        foreach (var (tool, extra) in new[] { ("memory_get", ""), ("memory_update", ",\"content\":\"hijacked\""), ("memory_delete", ""), ("memory_history", "") })
        {
            foreach (var scope in new[] { "\"user_id\":\"bo\"", "\"agent_id\":\"other\"", "\"session_id\":\"s2\"", "\"namespace\":\"work\"" })
            {
                var wrong = await client.CallAsync(tool, $$"""{"id":"{{ana}}",{{scope}}{{extra}}}""");
                wrong.IsError.Should().BeTrue($"{tool} with {scope}");
                var missing = await client.CallAsync(tool, $$"""{"id":"{{MissingId}}"{{extra}}}""");
                wrong.Text().Should().Be(missing.Text().Replace(MissingId, ana), "a memory of another scope answers as a missing one");
            }
        }
        var unchanged = await Ok(client, "memory_get", $$"""{"id":"{{ana}}","user_id":"ana","agent_id":"planner","session_id":"s1","namespace":"travel"}""");
        unchanged.GetProperty("version").GetInt64().Should().Be(1);
        unchanged.GetProperty("content").GetString().Should().StartWith("Ana's flight");
    }

    [Fact]
    public async Task A_scoped_key_is_confined_over_mcp_as_over_rest()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var aliceKey = await server.CreateKeyAsync("acme", Role.Write, new KeyScope("alice", null));
        string bobsId;
        await using (var adminClient = await McpConnections.ConnectHttpAsync(server, admin))
        {
            bobsId = (await Ok(adminClient, "memory_store", """{"content":"Bob's locker code is 4711","user_id":"bob"}""")).GetProperty("id").GetString()!;
        }

        await using var alice = await McpConnections.ConnectHttpAsync(server, aliceKey);
        var own = await Ok(alice, "memory_store", """{"content":"Alice's locker code is 1234"}""");
        own.GetProperty("user_id").GetString().Should().Be("alice", "a scoped key's writes are stamped with its scope");
        var outside = await alice.CallAsync("memory_store", """{"content":"written for bob","user_id":"bob"}""");
        outside.IsError.Should().BeTrue();
        outside.Text().Should().StartWith("forbidden").And.Contain("user_id 'bob'");

        var search = await Ok(alice, "memory_search", """{"query":"locker code"}""");
        search.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("user_id").GetString()).Should().Equal("alice");
        var list = await Ok(alice, "memory_list", "{}");
        list.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("user_id").GetString()).Should().Equal("alice");
        (await Ok(alice, "memory_stats", "{}")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1);
        (await alice.CallAsync("memory_search", """{"query":"locker code","user_id":"bob"}""")).Text().Should().StartWith("forbidden");

        foreach (var (tool, extra) in new[] { ("memory_get", ""), ("memory_update", ",\"content\":\"changed\""), ("memory_delete", ""), ("memory_history", "") })
        {
            var refused = await alice.CallAsync(tool, $$"""{"id":"{{bobsId}}"{{extra}}}""");
            refused.IsError.Should().BeTrue();
            refused.Text().Should().StartWith("not found", $"{tool} of a memory outside the key's scope");
        }

        // REST with the same key sees exactly what MCP saw.
        using var rest = server.ClientWithKey(aliceKey);
        using var restList = JsonDocument.Parse(await rest.GetStringAsync("/v1/memories"));
        restList.RootElement.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString())
            .Should().Equal(list.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        (await rest.GetAsync($"/v1/memories/{bobsId}")).StatusCode.Should().Be(System.Net.HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_read_key_may_call_the_read_only_tools_but_no_writing_tool()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = await server.CreateKeyAsync("acme", Role.Admin);
        var reader = await server.CreateKeyAsync("acme", Role.Read);
        string id;
        await using (var adminClient = await McpConnections.ConnectHttpAsync(server, admin))
        {
            id = (await Ok(adminClient, "memory_store", """{"content":"the deploy runs on Fridays"}""")).GetProperty("id").GetString()!;
            await Ok(adminClient, "kv_set", """{"key":"k","value":1}""");
        }
        await using var client = await McpConnections.ConnectHttpAsync(server, reader);
        await Ok(client, "memory_search", """{"query":"deploy"}""");
        await Ok(client, "memory_get", $$"""{"id":"{{id}}"}""");
        await Ok(client, "memory_list", "{}");
        await Ok(client, "memory_history", $$"""{"id":"{{id}}"}""");
        await Ok(client, "memory_stats", "{}");
        await Ok(client, "kv_get", """{"key":"k"}""");
        await Ok(client, "kv_list", "{}");

        var writes = new[]
        {
            ("memory_store", """{"content":"x"}"""), ("memory_update", $$"""{"id":"{{id}}","content":"y"}"""), ("memory_delete", $$"""{"id":"{{id}}"}"""),
            ("kv_set", """{"key":"k","value":2}"""), ("kv_delete", """{"key":"k"}"""), ("kv_cleanup", """{"pattern":"*"}"""), ("kv_incr", """{"key":"n"}"""),
        };
        foreach (var (tool, args) in writes)
        {
            var refused = await client.CallAsync(tool, args);
            refused.IsError.Should().BeTrue(tool);
            refused.Text().Should().StartWith("forbidden").And.Contain("read", tool);
        }
        (await Ok(client, "memory_get", $$"""{"id":"{{id}}"}""")).GetProperty("version").GetInt64().Should().Be(1);
        (await Ok(client, "kv_get", """{"key":"k"}""")).GetProperty("value").GetInt32().Should().Be(1);
    }

    [Theory]
    [InlineData("memory_store", """{}""", "invalid arguments: content is required")]
    [InlineData("memory_store", """{"content":"   "}""", "content must not be empty")]
    [InlineData("memory_store", """{"content":42}""", "content must be a string (got 42)")]
    [InlineData("memory_store", """{"content":"x","tier":"forever"}""", "tier must be one of working, short_term, long_term")]
    [InlineData("memory_store", """{"content":"x","importance":"high"}""", "importance must be a number (got a string)")]
    [InlineData("memory_store", """{"content":"x","importance":7}""", "importance")]
    [InlineData("memory_store", """{"content":"x","tags":"a,b"}""", "tags must be an array (got a string)")]
    [InlineData("memory_store", """{"content":"x","tags":[1]}""", "tags must be an array of strings (got 1 at tags[0])")]
    [InlineData("memory_store", """{"content":"x","metadata":[1]}""", "metadata must be")]
    [InlineData("memory_store", """{"content":"x","on_duplicate":"merge"}""", "on_duplicate must be return, reject or allow")]
    [InlineData("memory_store", """{"content":"x","user":"ana"}""", "unknown argument 'user'; memory_store takes content,")]
    [InlineData("memory_get", """{}""", "id is required")]
    [InlineData("memory_get", """{"id":"nope"}""", "not found: no memory with id 'nope'")]
    [InlineData("memory_get", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","user_id":" "}""", "user_id must not be empty")]
    [InlineData("memory_search", """{}""", "query is required")]
    [InlineData("memory_search", """{"query":""}""", "query must be a non-empty string")]
    [InlineData("memory_search", """{"query":"x","k":0}""", "k must be between 1 and 100 (got 0)")]
    [InlineData("memory_search", """{"query":"x","k":101}""", "k must be between 1 and 100 (got 101)")]
    [InlineData("memory_search", """{"query":"x","k":2.5}""", "k must be a whole number (got 2.5)")]
    [InlineData("memory_search", """{"query":"x","limit":3}""", "unknown argument 'limit'; memory_search takes query, k,")]
    [InlineData("memory_search", """{"query":"x","filters":{"user_id":"ana"}}""", "user_id is a top-level argument")]
    [InlineData("memory_search", """{"query":"x","filters":"tier=working"}""", "filters must be an object (got a string)")]
    [InlineData("memory_search", """{"query":"x","filters":{"tier":["forever"]}}""", "tier must be one of")]
    [InlineData("memory_search", """{"query":"x","filters":{"tags_match":"some"}}""", "tags_match must be 'all' or 'any'")]
    [InlineData("memory_search", """{"query":"x","filters":{"created_after":"yesterday"}}""", "ISO 8601")]
    [InlineData("memory_search", """{"query":"x","weights":{"semantic":-1}}""", "weights.semantic must be a number between")]
    [InlineData("memory_search", """{"query":"x","weights":{"fuzzy":1}}""", "unknown field 'fuzzy'")]
    [InlineData("memory_search", """{"query":"x","weights":{"semantic":"high"}}""", "weights.semantic must be a number (got a string)")]
    [InlineData("memory_search", """{"query":"x","filters":{"type":"preference"}}""", "filters.type must be an array (got a string)")]
    [InlineData("memory_search", """{"query":"x","filters":{"tags":["a",2]}}""", "filters.tags must be an array of strings (got 2 at filters.tags[1])")]
    [InlineData("memory_update", """{"content":"x"}""", "id is required")]
    [InlineData("memory_update", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","content":"x"}""", "not found")]
    [InlineData("memory_list", """{"cursor":"garbage"}""", "cursor is not one this server handed out")]
    [InlineData("memory_list", """{"limit":0}""", "limit must be between 1 and 1000 (got 0)")]
    [InlineData("memory_list", """{"limit":"ten"}""", "limit must be a whole number (got a string)")]
    [InlineData("memory_history", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}""", "not found: no memory with id '01ARZ3NDEKTSV4RRFFQ69G5FAV' has ever existed")]
    [InlineData("memory_delete", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}""", "not found")]
    [InlineData("memory_stats", """{"namespace":""}""", "namespace must not be empty")]
    [InlineData("memory_stats", """{"tenant":"other"}""", "unknown argument 'tenant'")]
    public async Task A_mistake_is_a_tool_error_with_a_clear_message(string tool, string arguments, string message)
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var result = await client.CallAsync(tool, arguments);
        result.IsError.Should().BeTrue();
        result.Text().Should().Contain(message);
        result.Text().Should().NotContain("malformed JSON").And.NotContain("Parameter '").And.NotContain("System.");
    }

    [Fact]
    public async Task Update_errors_name_the_problem_and_change_nothing()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        var id = (await Ok(client, "memory_store", """{"content":"Ana likes tea","user_id":"ana"}""")).GetProperty("id").GetString()!;

        (await client.CallAsync("memory_update", $$"""{"id":"{{id}}"}""")).Text().Should().Contain("at least one field to change");
        var stale = await client.CallAsync("memory_update", $$"""{"id":"{{id}}","content":"Ana likes coffee","expected_version":5}""");
        stale.IsError.Should().BeTrue();
        stale.Text().Should().StartWith("version mismatch").And.Contain("current version 1");
        (await client.CallAsync("memory_update", $$"""{"id":"{{id}}","tier":null}""")).Text().Should().Contain("tier cannot be cleared");
        (await client.CallAsync("memory_update", $$"""{"id":"{{id}}","content":""}""")).Text().Should().Contain("content must not be empty");
        (await client.CallAsync("memory_update", $$"""{"id":"{{id}}","ttl_seconds":60,"expires_at":"2030-01-01T00:00:00Z"}""")).Text().Should().Contain("not both");
        (await client.CallAsync("memory_update", $$"""{"id":"{{id}}","importance":"high"}""")).Text().Should().Contain("importance must be a number");

        var read = await Ok(client, "memory_get", $$"""{"id":"{{id}}"}""");
        read.GetProperty("version").GetInt64().Should().Be(1);
        read.GetProperty("content").GetString().Should().Be("Ana likes tea");
    }

    internal static async Task<JsonElement> Ok(McpClient client, string tool, string arguments) =>
        (await client.CallAsync(tool, arguments)).Structured().Clone();
}
