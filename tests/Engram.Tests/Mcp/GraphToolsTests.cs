using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>The graph tools where Engram's rules apply: refused relations, errors in the caller's field names, roles, one code path with REST.</summary>
public sealed class GraphToolsTests
{
    [Fact]
    public async Task A_relation_to_an_unknown_entity_is_refused_and_nothing_of_the_batch_is_stored()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        (await client.CallAsync("create_entities", """{"entities":[{"name":"Ana","entityType":"person","observations":[]}]}""")).Structured();

        var refused = await client.CallAsync("create_relations",
            """{"relations":[{"from":"Ana","to":"Ana","relationType":"likes"},{"from":"Ana","to":"Nobody","relationType":"knows"}]}""");

        refused.IsError.Should().BeTrue();
        refused.Text().Should().Contain("relations[1].to").And.Contain("no entity named 'Nobody'");
        var graph = (await client.CallAsync("read_graph", "{}")).Structured();
        graph.GetProperty("relations").GetArrayLength().Should().Be(0);
    }

    [Theory]
    [InlineData("create_entities", """{"entities":[{"name":"Ana","entityType":" ","observations":[]}]}""", "entities[0].entityType")]
    [InlineData("create_entities", """{"entities":[{"name":"","entityType":"person","observations":[]}]}""", "entities[0].name")]
    [InlineData("create_entities", """{"entities":[{"name":"Ana","entityType":"person"}]}""", "observations")]
    [InlineData("create_entities", """{"entities":"Ana"}""", "invalid arguments")]
    [InlineData("create_entities", """{"entities":[{"name":"Ana","entity_type":"person","observations":[]}]}""", "entity_type")]
    [InlineData("create_relations", """{"relations":[{"from":"Ana","to":"Bo","relationType":""}]}""", "relations[0].relationType")]
    [InlineData("add_observations", """{"observations":[{"entityName":"Nobody","contents":["x"]}]}""", "no entity named 'Nobody'")]
    [InlineData("add_observations", """{"observations":[{"entityName":"","contents":["x"]}]}""", "observations[0].entityName")]
    [InlineData("delete_entities", """{"entityNames":[]}""", "entityNames must be a non-empty array")]
    [InlineData("delete_entities", """{}""", "entityNames")]
    [InlineData("delete_observations", """{"deletions":[{"entityName":"Ana","observations":[""]}]}""", "deletions[0].observations[0]")]
    [InlineData("delete_relations", """{"relations":[{"from":"Ana","to":" "}]}""", "relationType")]
    [InlineData("search_nodes", """{"query":"  "}""", "query")]
    [InlineData("open_nodes", """{"names":[""]}""", "names[0]")]
    [InlineData("read_graph", """{"query":"Ana"}""", "read_graph takes no arguments (got 'query')")]
    public async Task User_errors_are_tool_errors_naming_the_field_as_the_caller_wrote_it(string tool, string args, string expected)
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);

        var result = await client.CallAsync(tool, args);

        result.IsError.Should().BeTrue(result.Text());
        result.Text().Should().Contain(expected);
        result.Text().Should().NotContain("entity_name").And.NotContain("relation_type").And.NotContain("unexpected error");
    }

    [Fact]
    public async Task A_read_key_reads_the_graph_but_cannot_change_it()
    {
        await using var server = await EngramServer.StartAsync();
        var writer = await server.CreateKeyAsync("acme", Role.Write);
        var reader = await server.CreateKeyAsync("acme", Role.Read);
        await using (var client = await McpConnections.ConnectHttpAsync(server, writer))
        {
            (await client.CallAsync("create_entities", """{"entities":[{"name":"Ana","entityType":"person","observations":["likes tea"]}]}""")).Structured();
        }
        await using (var client = await McpConnections.ConnectHttpAsync(server, reader))
        {
            var refused = await client.CallAsync("delete_entities", """{"entityNames":["Ana"]}""");
            refused.IsError.Should().BeTrue();
            refused.Text().Should().Contain("forbidden");
            var opened = (await client.CallAsync("open_nodes", """{"names":["Ana"]}""")).Structured();
            opened.GetProperty("entities")[0].GetProperty("observations")[0].GetString().Should().Be("likes tea");
        }
    }

    [Fact]
    public async Task Tools_and_rest_share_one_graph_in_the_callers_tenant()
    {
        await using var server = await EngramServer.StartAsync();
        var acme = await server.CreateKeyAsync("acme", Role.Write);
        var other = await server.CreateKeyAsync("other", Role.Write);
        await using (var client = await McpConnections.ConnectHttpAsync(server, acme))
        {
            (await client.CallAsync("create_entities", """{"entities":[{"name":"Ana","entityType":"person","observations":["likes tea"]}]}""")).Structured();
        }
        var rest = await server.ClientWithKey(acme).GetAsync("/v1/graph");
        var graph = await rest.JsonAsync();
        graph.GetProperty("entities")[0].GetProperty("entity_type").GetString().Should().Be("person");

        await using var otherClient = await McpConnections.ConnectHttpAsync(server, other);
        var theirs = (await otherClient.CallAsync("read_graph", "{}")).Structured();
        theirs.GetProperty("entities").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task Open_nodes_and_search_nodes_carry_every_relation_touching_the_entities_found()
    {
        await using var server = await EngramServer.StartAsync();
        await using var client = await McpConnections.ConnectHttpAsync(server);
        (await client.CallAsync("create_entities", """{"entities":[{"name":"Ana","entityType":"person","observations":["plays cello"]},{"name":"Orchestra","entityType":"group","observations":[]}]}""")).Structured();
        (await client.CallAsync("create_relations", """{"relations":[{"from":"Ana","to":"Orchestra","relationType":"member_of"}]}""")).Structured();

        var opened = (await client.CallAsync("open_nodes", """{"names":["Ana"]}""")).Structured();
        var found = (await client.CallAsync("search_nodes", """{"query":"cello"}""")).Structured();

        foreach (var graph in new[] { opened, found })
        {
            graph.GetProperty("entities").GetArrayLength().Should().Be(1);
            graph.GetProperty("relations").GetRawText().Should().Be("""[{"from":"Ana","to":"Orchestra","relationType":"member_of"}]""");
        }
        // REST keeps its documented shape: only relations between the entities returned.
        var rest = await (await server.Client.GetAsync("/v1/graph/nodes?names=Ana")).JsonAsync();
        rest.GetProperty("relations").GetArrayLength().Should().Be(0);
    }
}
