using System.Net;
using System.Text;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// Bodies of the right syntax and the wrong shape: duplicate keys (issue 10, 6a), nesting past the
/// parser's depth, every kind of field given the wrong type, and enums given as numbers (defect 5:
/// <c>"tier":99</c> was stored as long_term and echoed back as 99). Each is a 400 problem naming the field.
/// </summary>
public sealed class JsonShapeTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();


    [Theory]
    [InlineData("POST", "/v1/memories", """{"content":"a","content":"b"}""", "content")]
    [InlineData("POST", "/v1/memories", """{"content":"a","metadata":{"x":1,"x":2}}""", "metadata")]
    [InlineData("POST", "/v1/memories", """{"content":"a","metadata":{"o":{"deep":[{"y":1,"y":1}]}}}""", null)]
    [InlineData("POST", "/v1/search", """{"query":"a","filters":{"user_id":"u","user_id":"v"}}""", "filters.user_id")]
    [InlineData("PUT", "/v1/kv/d", """{"value":1,"value":2}""", "value")]
    [InlineData("PUT", "/v1/kv/d", """{"value":{"a":{"b":1,"b":2}}}""", null)]
    [InlineData("PUT", "/v1/kv/d", """{"value":[{"z":true,"z":false}]}""", null)]
    [InlineData("POST", "/v1/kv/mset", """{"items":[{"key":"d","value":{"q":1,"q":1}}]}""", null)]
    public async Task A_key_given_twice_is_refused_at_any_depth(string method, string path, string json, string? field)
    {
        var response = await _server.SendJsonAsync(method, path, json);
        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
        problem.GetProperty("detail").GetString().Should().Contain("duplicate key");
        (await _server.Client.GetAsync("/v1/kv/d")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("POST", "/v1/memories", "metadata")]
    [InlineData("PUT", "/v1/kv/deep", "value")]
    public async Task Nesting_past_the_parser_depth_is_a_400(string method, string path, string field)
    {
        var deep = new string('[', 5_000) + new string(']', 5_000);
        var json = field == "metadata" ? "{\"content\":\"x\",\"metadata\":{\"a\":" + deep + "}}" : "{\"value\":" + deep + "}";
        var response = await _server.SendJsonAsync(method, path, json);
        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest)).GetProperty("detail").GetString().Should().Contain("depth");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    [InlineData("2")]
    [InlineData("99")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("\"1\"")]
    [InlineData("\"LongTerm\"")]
    [InlineData("\"Working\"")]
    [InlineData("\"short_term, long_term\"")]
    [InlineData("\"\"")]
    [InlineData("true")]
    [InlineData("[\"working\"]")]
    public async Task A_tier_is_one_of_its_names_only(string tier)
    {
        var created = await _server.SendJsonAsync("POST", "/v1/memories", $$"""{"content":"a tier","tier":{{tier}}}""");
        await created.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tier");

        var id = (await _server.CreateAsync(new { content = "patch me", tier = "working" })).GetProperty("id").GetString();
        var patched = await _server.PatchJsonAsync($"/v1/memories/{id}", $$"""{"tier":{{tier}}}""");
        await patched.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tier");
        (await (await _server.Client.GetAsync($"/v1/memories/{id}")).JsonAsync()).GetProperty("tier").GetString().Should().Be("working");

        var search = await _server.SendJsonAsync("POST", "/v1/search", "{\"query\":\"x\",\"filters\":{\"tier\":[" + tier + "]}}");
        await search.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "filters.tier");
    }

    [Theory]
    [InlineData("working")]
    [InlineData("short_term")]
    [InlineData("long_term")]
    public async Task The_response_shows_the_tier_that_was_stored(string tier)
    {
        var created = await _server.CreateAsync(new { content = "stored tier " + tier, tier });
        created.GetProperty("tier").GetString().Should().Be(tier);
        var id = created.GetProperty("id").GetString();
        (await (await _server.Client.GetAsync($"/v1/memories/{id}")).JsonAsync()).GetProperty("tier").GetString().Should().Be(tier);
    }

    [Theory]
    // strings
    [InlineData("POST", "/v1/memories", """{"content":42}""", "content")]
    [InlineData("POST", "/v1/memories", """{"content":"x","type":["fact"]}""", "type")]
    [InlineData("POST", "/v1/memories", """{"content":"x","user_id":{"id":1}}""", "user_id")]
    [InlineData("POST", "/v1/memories", """{"content":"x","source":false}""", "source")]
    // numbers
    [InlineData("POST", "/v1/memories", """{"content":"x","importance":"high"}""", "importance")]
    [InlineData("POST", "/v1/memories", """{"content":"x","valence":[0.1]}""", "valence")]
    [InlineData("POST", "/v1/memories", """{"content":"x","ttl_seconds":1.5}""", "ttl_seconds")]
    [InlineData("POST", "/v1/memories", """{"content":"x","ttl_seconds":"60"}""", "ttl_seconds")]
    [InlineData("POST", "/v1/search", """{"query":"x","k":"3"}""", "k")]
    [InlineData("POST", "/v1/search", """{"query":"x","k":1e400}""", "k")]
    [InlineData("PUT", "/v1/kv/t", """{"value":1,"ttl_seconds":"soon"}""", "ttl_seconds")]
    [InlineData("POST", "/v1/kv/t/incr", """{"by":"1"}""", "by")]
    [InlineData("POST", "/v1/kv/t/incr", """{"by":9223372036854775808}""", "by")]
    // booleans
    [InlineData("PUT", "/v1/kv/t", """{"value":1,"nx":"true"}""", "nx")]
    [InlineData("POST", "/v1/search", """{"query":"x","explain":1}""", "explain")]
    // arrays and objects
    [InlineData("POST", "/v1/memories", """{"content":"x","tags":"a,b"}""", "tags")]
    [InlineData("POST", "/v1/memories", """{"content":"x","tags":[1]}""", "tags")]
    [InlineData("POST", "/v1/memories", """{"content":"x","entities":{"a":1}}""", "entities")]
    [InlineData("POST", "/v1/memories", """{"content":"x","metadata":[1]}""", "metadata")]
    [InlineData("POST", "/v1/memories/batch", """{"items":{"content":"x"}}""", "items")]
    [InlineData("POST", "/v1/kv/mget", """{"keys":"a"}""", "keys")]
    [InlineData("POST", "/v1/search", """{"query":"x","filters":[]}""", "filters")]
    // timestamps
    [InlineData("POST", "/v1/memories", """{"content":"x","created_at":1700000000}""", "created_at")]
    [InlineData("POST", "/v1/memories", """{"content":"x","expires_at":"tomorrow"}""", "expires_at")]
    // the body itself
    [InlineData("POST", "/v1/memories", """[{"content":"x"}]""", null)]
    [InlineData("POST", "/v1/memories", "\"content\"", null)]
    [InlineData("POST", "/v1/memories", "null", "body")]
    public async Task A_field_of_the_wrong_type_is_a_400_naming_it(string method, string path, string json, string? field)
    {
        var response = await _server.SendJsonAsync(method, path, json);
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }
}
