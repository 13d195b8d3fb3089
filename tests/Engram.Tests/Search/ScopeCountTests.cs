using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>GET /v1/scopes (and the UI's scopes page): exact counts per scope value from the index.</summary>
public sealed class ScopeCountTests
{
    private static async Task<string> AddAsync(EngramServer server, object body)
    {
        var response = await server.Client.PostAsJsonAsync("/v1/memories", body);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.JsonAsync()).GetProperty("id").GetString()!;
    }

    private static async Task<Dictionary<string, int>> CountsAsync(EngramServer server, string query = "")
    {
        var response = await server.Client.GetAsync("/v1/scopes" + query);
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await response.JsonAsync()).GetProperty("items").EnumerateArray()
            .ToDictionary(s => s.GetProperty("field").GetString() + ":" + s.GetProperty("name").GetString(), s => s.GetProperty("memories").GetInt32());
    }

    [Fact]
    public async Task Counts_every_scope_value_of_current_memories_exactly_and_follow_deletes()
    {
        await using var server = await EngramServer.StartAsync();
        for (var i = 0; i < 7; i++)
        {
            await AddAsync(server, new { content = $"alice note {i}", user_id = "alice", agent_id = i % 2 == 0 ? "planner" : null, @namespace = "work" });
        }
        var bobs = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            bobs.Add(await AddAsync(server, new { content = $"bob note {i}", user_id = "bob", session_id = "s-1" }));
        }
        await AddAsync(server, new { content = "no scope at all" });

        (await CountsAsync(server)).Should().BeEquivalentTo(new Dictionary<string, int>
        {
            ["user_id:alice"] = 7,
            ["user_id:bob"] = 3,
            ["agent_id:planner"] = 4,
            ["session_id:s-1"] = 3,
            ["namespace:work"] = 7,
        });

        (await server.Client.DeleteAsync($"/v1/memories/{bobs[0]}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        var after = await CountsAsync(server);
        after["user_id:bob"].Should().Be(2, "a deleted memory no longer counts (read-your-writes)");
        after["session_id:s-1"].Should().Be(2);

        (await server.Client.GetAsync("/v1/scopes?user_id=alice")).StatusCode.Should().Be(HttpStatusCode.BadRequest, "the route takes no parameters");
        var page = await server.Client.GetStringAsync("/ui/scopes");
        page.Should().Contain("planner").And.Contain(">4<", "the UI's scopes page shows the same counts");
    }
}
