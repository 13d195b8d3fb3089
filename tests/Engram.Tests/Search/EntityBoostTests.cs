using System.Net;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>The entity signal: memories naming an entity the query names move up, and explain shows by how much.</summary>
public sealed class EntityBoostTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<List<string?>> Order(string query, double entityWeight) =>
        (await _server.SearchAsync(new { query, k = 5, weights = new { semantic = 0, lexical = 1, entity = entityWeight } }))
            .Select(r => r.GetProperty("content").GetString()).ToList();

    /// <summary>Two breakfast memories: the stronger word match names nobody, the weaker one names Priya.</summary>
    private async Task SeedAsync()
    {
        await _server.CreateAsync(new { content = "oatmeal for breakfast, oatmeal with berries and breakfast tea" });
        await _server.CreateAsync(new { content = "she has oatmeal for breakfast", entities = new[] { "Priya", "New York" } });
    }

    [Fact]
    public async Task ABoostedMemory_OvertakesAStrongerWordMatch_OnlyWhenTheQueryNamesItsEntity()
    {
        await SeedAsync();
        var stronger = "oatmeal for breakfast, oatmeal with berries and breakfast tea";
        var named = "she has oatmeal for breakfast";

        (await Order("what does Priya eat, oatmeal for breakfast?", 0))[0].Should().Be(stronger, "without the entity signal words decide");
        (await Order("what does Priya eat, oatmeal for breakfast?", 2))[0].Should().Be(named);
        (await Order("what does PRIYA eat, oatmeal for breakfast?", 2))[0].Should().Be(named, "names match case-insensitively");
        (await Order("oatmeal for breakfast in new york", 2))[0].Should().Be(named, "a multi-word name matches as a phrase");

        (await Order("oatmeal for breakfast", 2))[0].Should().Be(stronger, "the query names no entity");
        (await Order("does Priyanka eat oatmeal for breakfast", 2))[0].Should().Be(stronger, "whole words only");
        (await Order("oatmeal for breakfast in york, new", 2))[0].Should().Be(stronger, "the words of a name in another order are not the name");
    }

    [Fact]
    public async Task TheBoost_FollowsUpdates_AndIsOnByDefault()
    {
        await SeedAsync();
        var named = "she has oatmeal for breakfast";
        var results = await _server.SearchAsync(new { query = "Priya oatmeal breakfast", k = 5, explain = true });
        var hit = results.Single(r => r.GetProperty("content").GetString() == named);
        hit.GetProperty("explain").GetProperty("entity").GetDouble().Should().Be(1);
        hit.GetProperty("explain").GetProperty("entity_contribution").GetDouble().Should().BeApproximately(0.1, 1e-9, "EntityWeight defaults to 0.1");

        var id = hit.GetProperty("id").GetString();
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"entities":["Omar"]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        var after = (await _server.SearchAsync(new { query = "Priya oatmeal breakfast", k = 5, explain = true }))
            .Single(r => r.GetProperty("id").GetString() == id);
        after.GetProperty("explain").GetProperty("entity").GetDouble().Should().Be(0, "Priya is no longer named by any memory");
        (await Order("what does Omar eat, oatmeal for breakfast?", 2))[0].Should().Be(named);
    }

    [Fact]
    public async Task Explain_EntityShareIsTheFractionOfNamedEntities_AndContributionsAddUpToTheScore()
    {
        await _server.CreateAsync(new { content = "Lisbon offsite planning notes", entities = new[] { "Ana" }, importance = 0.8 });
        await _server.CreateAsync(new { content = "offsite budget notes", entities = new[] { "Ana", "Ben" } });
        var results = await _server.SearchAsync(new
        {
            query = "what did Ana and Ben say about the offsite",
            k = 2,
            explain = true,
            weights = new { semantic = 0.4, lexical = 0.3, recency = 0.1, importance = 0.1, entity = 0.5 },
        });
        results.Should().HaveCount(2);
        foreach (var hit in results)
        {
            var e = hit.GetProperty("explain");
            var sum = e.GetProperty("semantic_contribution").GetDouble() + e.GetProperty("lexical_contribution").GetDouble()
                + e.GetProperty("recency_contribution").GetDouble() + e.GetProperty("importance_contribution").GetDouble()
                + e.GetProperty("entity_contribution").GetDouble();
            hit.GetProperty("score").GetDouble().Should().BeApproximately(sum, 1e-5);
            e.GetProperty("entity_contribution").GetDouble().Should().BeApproximately(0.5 * e.GetProperty("entity").GetDouble(), 1e-9);
        }
        var both = results.Single(r => r.GetProperty("content").GetString()!.Contains("budget"));
        both.GetProperty("explain").GetProperty("entity").GetDouble().Should().Be(1, "it names both entities the query names");
        var one = results.Single(r => r.GetProperty("content").GetString()!.Contains("Lisbon"));
        one.GetProperty("explain").GetProperty("entity").GetDouble().Should().Be(0.5);
    }

    [Fact]
    public async Task EntityWeight_IsValidatedAndConfigurable()
    {
        await (await _server.PostJsonAsync("/v1/search", """{"query":"x","weights":{"entity":-0.1}}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "weights.entity");
        // The entity weight alone is a valid ranking.
        (await _server.PostJsonAsync("/v1/search", """{"query":"x","weights":{"semantic":0,"lexical":0,"entity":1}}""")).StatusCode.Should().Be(HttpStatusCode.OK);

        await using var off = await EngramServer.StartAsync(configure: o => o.Search.EntityWeight = 0);
        await off.CreateAsync(new { content = "tea with Priya", entities = new[] { "Priya" } });
        var response = await off.PostJsonAsync("/v1/search", """{"query":"Priya tea","explain":true}""");
        var e = (await response.JsonAsync()).GetProperty("results")[0].GetProperty("explain");
        e.GetProperty("entity").GetDouble().Should().Be(1, "the signal is still reported");
        e.GetProperty("entity_contribution").GetDouble().Should().Be(0);
    }
}
