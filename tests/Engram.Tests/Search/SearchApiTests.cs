using System.Net;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

public sealed class SearchApiTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Search_SeesEveryAcknowledgedWriteImmediately()
    {
        for (var i = 0; i < 20; i++)
        {
            var id = (await _server.CreateAsync(new { content = $"note {i}: the staging database password rotates on fridays zebra{i}" })).GetProperty("id").GetString();
            var results = await _server.SearchAsync(new { query = $"zebra{i}", k = 5 });
            results.Should().NotBeEmpty();
            results[0].GetProperty("id").GetString().Should().Be(id, "a search right after an acknowledged write must see it");
        }
    }

    [Fact]
    public async Task Search_FindsByMeaningAndByWords_AndReturnsMemoryFieldsWithScore()
    {
        await _server.CreateAsync(new { content = "Alice adopted a puppy named Rex last spring", user_id = "alice" });
        await _server.CreateAsync(new { content = "The quarterly revenue report is due on Monday", user_id = "alice" });
        await _server.CreateAsync(new { content = "Bob's favourite food is spicy ramen", user_id = "bob" });

        var byMeaning = await _server.SearchAsync(new { query = "dog pet", k = 3 });
        byMeaning[0].GetProperty("content").GetString().Should().Contain("puppy", "semantic similarity links dog/pet to puppy");
        byMeaning[0].GetProperty("score").GetDouble().Should().BeGreaterThan(0);
        byMeaning[0].GetProperty("user_id").GetString().Should().Be("alice");
        byMeaning[0].GetProperty("content_hash").GetString().Should().HaveLength(64);

        var byWords = await _server.SearchAsync(new { query = "revenue report", k = 1 });
        byWords.Single().GetProperty("content").GetString().Should().Contain("revenue");
    }

    [Fact]
    public async Task Filters_ApplyBeforeTheTopKCut()
    {
        // 60 strong matches in another scope, 5 weaker ones in ours: a filtered search must still return our 5.
        var noise = string.Join(',', Enumerable.Range(0, 60).Select(i => $$"""{"content":"deployment checklist deployment checklist step {{i}}","user_id":"other"}"""));
        (await _server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{noise}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        var mine = string.Join(',', Enumerable.Range(0, 5).Select(i => $$$"""{"content":"notes about the deployment, item {{{i}}}","user_id":"me","tags":["ops"],"metadata":{"team":"infra"}}"""));
        (await _server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{mine}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);

        var results = await _server.SearchAsync(new { query = "deployment checklist", k = 5, filters = new { user_id = "me" } });
        results.Should().HaveCount(5);
        results.Should().OnlyContain(r => r.GetProperty("user_id").GetString() == "me");

        (await _server.SearchAsync(new { query = "deployment", k = 10, filters = new { tags = new[] { "ops" } } })).Should().HaveCount(5);
        (await _server.SearchAsync(new { query = "deployment", k = 10, filters = new { metadata = new { team = "infra" } } })).Should().HaveCount(5);
        (await _server.SearchAsync(new { query = "deployment", k = 10, filters = new { metadata = new { team = "nobody" } } })).Should().BeEmpty();
        (await _server.SearchAsync(new { query = "deployment", k = 10, filters = new { user_id = "stranger" } })).Should().BeEmpty();
        (await _server.SearchAsync(new { query = "deployment", k = 3, filters = new { type = new[] { "fact" }, tier = new[] { "long_term" }, user_id = "me" } })).Should().HaveCount(3);
    }

    [Fact]
    public async Task Explain_GivesEachSignalAndTheyAddUpToTheScore()
    {
        await _server.CreateAsync(new { content = "The Lisbon offsite is in October", importance = 0.9 });
        var results = await _server.SearchAsync(new { query = "Lisbon offsite", k = 1, explain = true, weights = new { semantic = 0.4, lexical = 0.4, recency = 0.1, importance = 0.1 } });
        var hit = results.Single();
        var e = hit.GetProperty("explain");
        var sum = e.GetProperty("semantic_contribution").GetDouble() + e.GetProperty("lexical_contribution").GetDouble()
            + e.GetProperty("recency_contribution").GetDouble() + e.GetProperty("importance_contribution").GetDouble()
            + e.GetProperty("entity_contribution").GetDouble();
        hit.GetProperty("score").GetDouble().Should().BeApproximately(sum, 1e-5);
        e.GetProperty("lexical").GetDouble().Should().Be(1.0, "the only match has the top BM25 score");
        e.GetProperty("importance_contribution").GetDouble().Should().BeApproximately(0.09, 1e-6);
        e.GetProperty("recency").GetDouble().Should().BeApproximately(1.0, 1e-3, "it was created a moment ago");
        e.GetProperty("bm25").GetDouble().Should().BeGreaterThan(0);
        (await _server.SearchAsync(new { query = "Lisbon offsite", k = 1 })).Single().TryGetProperty("explain", out _).Should().BeFalse();
    }

    [Fact]
    public async Task Recency_AndImportance_ChangeTheOrder()
    {
        await _server.CreateAsync(new { content = "standup moved to 10am", created_at = "2020-01-01T00:00:00Z", importance = 0.1 });
        await _server.CreateAsync(new { content = "standup moved to 9am", importance = 0.9 });
        var recent = await _server.SearchAsync(new { query = "standup moved", k = 2, weights = new { semantic = 0, lexical = 0.1, recency = 1 } });
        recent[0].GetProperty("content").GetString().Should().Contain("9am");
        var important = await _server.SearchAsync(new { query = "standup moved", k = 2, weights = new { semantic = 0, lexical = 0.1, importance = 1 } });
        important[0].GetProperty("content").GetString().Should().Contain("9am");
        var old = await _server.SearchAsync(new { query = "standup moved", k = 2, weights = new { semantic = 0, lexical = 0.1, importance = 0, recency = 0 }, min_score = 0.05 });
        old.Should().HaveCount(2);
    }

    [Fact]
    public async Task UpdatesAndDeletes_AreReflected()
    {
        var id = (await _server.CreateAsync(new { content = "the wifi password is hunter2" })).GetProperty("id").GetString();
        (await _server.PatchJsonAsync($"/v1/memories/{id}", """{"content":"the wifi password is correcthorse"}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.SearchAsync(new { query = "hunter2", k = 5, weights = new { semantic = 0, lexical = 1 } })).Should().BeEmpty();
        (await _server.SearchAsync(new { query = "correcthorse", k = 5 })).Single().GetProperty("id").GetString().Should().Be(id);
        (await _server.Client.DeleteAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await _server.SearchAsync(new { query = "correcthorse wifi password", k = 5 })).Should().BeEmpty();
    }

    [Fact]
    public async Task Search_UpdatesAccessCountsInTheBackground()
    {
        var id = (await _server.CreateAsync(new { content = "the parking garage closes at midnight" })).GetProperty("id").GetString();
        await _server.SearchAsync(new { query = "parking garage", k = 1 });
        await _server.SearchAsync(new { query = "parking garage midnight", k = 1 });
        JsonElement memory = default;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            memory = await (await _server.Client.GetAsync($"/v1/memories/{id}")).JsonAsync();
            if (memory.GetProperty("access_count").GetInt64() == 2)
            {
                break;
            }
            await Task.Delay(100);
        }
        memory.GetProperty("access_count").GetInt64().Should().Be(2);
        memory.GetProperty("last_accessed_at").ValueKind.Should().Be(JsonValueKind.String);
        memory.GetProperty("version").GetInt64().Should().Be(1, "access bookkeeping is not a change");
    }

    [Fact]
    public async Task WritesFromAnotherProcess_AppearWithinASecond()
    {
        // A second store on the same file stands in for the CLI writing next to the running server.
        await using (var other = SqliteMemoryStore.Open(_server.DataPath))
        {
            var service = new MemoryService(other, new Engram.Core.Configuration.MemoryLimits(), TimeProvider.System);
            await service.CreateAsync(Caller.Default("cli"), new NewMemory { Content = "written beside the server: aardvark" });
        }
        var found = false;
        for (var attempt = 0; attempt < 20 && !found; attempt++)
        {
            found = (await _server.SearchAsync(new { query = "aardvark", k = 1 })).Count == 1;
            if (!found)
            {
                await Task.Delay(100);
            }
        }
        found.Should().BeTrue("the index follows the change log within about a second");
    }

    [Theory]
    [InlineData("""{"query":""}""", "query")]
    [InlineData("""{"query":"   "}""", "query")]
    [InlineData("""{"k":3}""", "query")]
    [InlineData("""{"query":"x","k":0}""", "k")]
    [InlineData("""{"query":"x","k":101}""", "k")]
    [InlineData("""{"query":"x","weights":{"semantic":-1}}""", "weights.semantic")]
    [InlineData("""{"query":"x","weights":{"vibes":1}}""", "vibes")]
    [InlineData("""{"query":"x","weights":{"semantic":0,"lexical":0,"recency":0,"importance":0,"entity":0}}""", "weights")]
    [InlineData("""{"query":"x","recency_half_life_days":0}""", "recency_half_life_days")]
    [InlineData("""{"query":"x","filters":{"tier":["forever"]}}""", "filters.tier")]
    [InlineData("""{"query":"x","filters":{"tags_match":"some"}}""", "filters.tags_match")]
    [InlineData("""{"query":"x","filters":{"usr_id":"a"}}""", "usr_id")]
    [InlineData("""{"query":"x","filters":{"metadata":{"a":{"nested":1}}}}""", "filters.metadata")]
    [InlineData("""{"query":"x","surprise":1}""", "surprise")]
    public async Task BadRequests_Get400NamingTheField(string body, string field)
    {
        await (await _server.PostJsonAsync("/v1/search", body)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }

    [Fact]
    public async Task K_DefaultsFromConfiguration()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Search.TopK = 3);
        var items = string.Join(',', Enumerable.Range(0, 10).Select(i => $$"""{"content":"llama fact number {{i}}"}"""));
        await server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{items}}]}""");
        var response = await server.PostJsonAsync("/v1/search", """{"query":"llama"}""");
        (await response.JsonAsync()).GetProperty("results").GetArrayLength().Should().Be(3);
    }
}
