using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Hostile;

/// <summary>
/// What a hostile-input probe found in session 43: U+FFFE (valid Unicode that .NET's normalization refuses) gave 500s,
/// and a graph entity named with it broke every entity's memories; metadata nested just under the parser's limit was
/// stored, then could not be written inside a listing (400 "malformed JSON", or a 200 cut off half-way) nor sent over MCP.
/// </summary>
public sealed class NonCharacterAndDepthTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public void Normalization_keeps_U_FFFE_and_lone_surrogates_and_normalizes_the_text_between()
    {
        var decomposed = "e\u0301";
        UnicodeText.Normalize(decomposed + "\uFFFE" + decomposed, NormalizationForm.FormC).Should().Be("\u00e9\uFFFE\u00e9");
        UnicodeText.Normalize("\uFFFE", NormalizationForm.FormC).Should().Be("\uFFFE");
        UnicodeText.Normalize("\u00e9\uFFFE", NormalizationForm.FormD).Should().Be(decomposed + "\uFFFE");
        // Built here: attributes would turn a lone surrogate into U+FFFD.
        var lone = "a" + '\ud800' + decomposed + '\udc00';
        UnicodeText.Normalize(lone, NormalizationForm.FormC).Should().Be("a" + '\ud800' + "\u00e9" + '\udc00');
        UnicodeText.Normalize("😀" + decomposed, NormalizationForm.FormC).Should().Be("😀\u00e9"); // a pair is not a boundary
        var plain = "nothing to do";
        UnicodeText.Normalize(plain, NormalizationForm.FormC).Should().BeSameAs(plain);
        EntityNames.Key(" B\uFFFEad ").Should().Be("b\uFFFEad");
        ContentNormalizer.Normalize("a\uFFFE  b").Should().Be("a\uFFFE b");
    }

    [Theory]
    [InlineData("POST", "/v1/memories", """{"content":"tea \ufffe time","entities":["Ch\ufffeai"],"user_id":"nc"}""", HttpStatusCode.Created)]
    [InlineData("POST", "/v1/memories/batch", """{"items":[{"content":"a\ufffeb","user_id":"nc"},{"content":"fine","user_id":"nc"}]}""", HttpStatusCode.OK)]
    [InlineData("POST", "/v1/search", """{"query":"tea","filters":{"entity":"ch\ufffeai"}}""", HttpStatusCode.OK)]
    [InlineData("POST", "/v1/memories/", """{"messages":"mem0 \ufffe text","user_id":"nc","infer":false}""", HttpStatusCode.OK)]
    [InlineData("POST", "/v3/memories/add/", """{"messages":[{"role":"user","content":"m\ufffe"}],"user_id":"nc","infer":false}""", HttpStatusCode.OK)]
    public async Task Text_with_U_FFFE_is_taken(string method, string path, string json, HttpStatusCode expected)
    {
        var response = await RawHttp.RequestAsync(_server.BaseAddress, method, path, json, Timeout);
        response.Status.Should().Be((int)expected, response.Body);
    }

    [Fact]
    public async Task A_memory_with_U_FFFE_is_found_by_its_entity_and_keeps_its_text()
    {
        var created = await _server.CreateAsync(new { content = "noncharacter \uFFFE inside", entities = new[] { "Ch\uFFFEai" }, user_id = "nc1" });
        var id = created.GetProperty("id").GetString();
        created.GetProperty("content").GetString().Should().Be("noncharacter \uFFFE inside");
        var list = await RawHttp.RequestAsync(_server.BaseAddress, "GET", "/v1/memories?entity=ch%EF%BF%BEAI", "", Timeout);
        list.Status.Should().Be(200, list.Body);
        list.Json.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().Equal(id);
        var patch = await _server.PatchJsonAsync($"/v1/memories/{id}", """{"content":"z\ufffez","entities":["Z\ufffe"]}""");
        patch.StatusCode.Should().Be(HttpStatusCode.OK, await patch.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_graph_entity_named_with_U_FFFE_leaves_the_other_entities_readable()
    {
        foreach (var (name, type) in new[] { ("Bad\uFFFE", "thing"), ("Alice", "person") })
        {
            var body = JsonSerializer.Serialize(new { entities = new[] { new { name, entity_type = type } } });
            (await _server.PostJsonAsync("/v1/graph/entities", body)).StatusCode.Should().Be(HttpStatusCode.OK);
        }
        await _server.CreateAsync(new { content = "Alice likes tea", entities = new[] { "Alice" } });
        var alice = await _server.Client.GetAsync("/v1/graph/entities/Alice/memories");
        alice.StatusCode.Should().Be(HttpStatusCode.OK, await alice.Content.ReadAsStringAsync());
        var bad = await _server.Client.GetAsync("/v1/graph/entities/Bad%EF%BF%BE/memories");
        bad.StatusCode.Should().Be(HttpStatusCode.OK, await bad.Content.ReadAsStringAsync());
    }

    private static string Nested(int depth) => string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);

    [Fact]
    public async Task Values_nested_deeper_than_the_limit_are_refused_naming_the_field()
    {
        var limit = StoredJsonRules.MaxDepth;
        foreach (var (path, template, field) in new (string, string, string?)[]
        {
            ("/v1/memories", "{\"content\":\"nested\",\"metadata\":X}", "metadata"),
            ("/v1/memories/", "{\"messages\":\"nested\",\"user_id\":\"u\",\"infer\":false,\"metadata\":X}", null), // mem0's error shape has no field
            ("/v1/kv/mset", "{\"items\":[{\"key\":\"n\",\"value\":X}]}", "items[0].value"),
        })
        {
            var refused = await RawHttp.RequestAsync(_server.BaseAddress, "POST", path, template.Replace("X", Nested(limit + 1), StringComparison.Ordinal), Timeout);
            refused.Status.Should().Be(400, $"{path}: {refused.Body}");
            refused.Json.GetProperty("detail").GetString().Should().Contain($"nests {limit + 1} levels").And.Contain($"the limit is {limit}");
            if (field is not null)
            {
                refused.Json.GetProperty("field").GetString().Should().Be(field, path);
            }
            var taken = await RawHttp.RequestAsync(_server.BaseAddress, "POST", path, template.Replace("X", Nested(limit), StringComparison.Ordinal), Timeout);
            taken.Status.Should().BeOneOf([200, 201], $"{path}: {taken.Body}");
        }
        var put = await RawHttp.RequestAsync(_server.BaseAddress, "PUT", "/v1/kv/deep", "{\"value\":" + Nested(limit + 1) + "}", Timeout);
        put.Status.Should().Be(400, put.Body);
        put.Json.GetProperty("field").GetString().Should().Be("value");
    }

    [Fact]
    public async Task Values_stored_deeper_before_the_limit_read_back_in_every_listing_and_over_MCP()
    {
        // Written below the services, as a server before the limit took them: 63 levels, the most a request carried.
        var deep = Nested(63);
        var user = "legacy";
        var memory = TestMemories.New("deeply nested metadata") with { UserId = user, Metadata = JsonDocument.Parse(deep).RootElement.Clone() };
        await _server.Services.GetRequiredService<IMemoryStore>().CreateAsync(Caller.Default("test"), memory, DuplicatePolicy.Allow);
        await _server.Services.GetRequiredService<IKeyValueStore>().SetKvAsync(Caller.Default("test"), new KvWrite("deep", deep, null), WriteDurability.Full);
        // Enough other memories after it that a listing's response is already under way when the deep one is written.
        for (var i = 0; i < 30; i++)
        {
            await _server.CreateAsync(new { content = $"filler {i} " + string.Concat(Enumerable.Repeat("lorem ipsum ", 100)), user_id = user });
        }
        foreach (var (method, path, body) in new[]
        {
            ("GET", $"/v1/memories?user_id={user}&limit=100", ""),
            ("GET", $"/v1/memories/{memory.Id}/history", ""),
            ("POST", "/v1/search", "{\"query\":\"deeply nested\",\"filters\":{\"user_id\":\"" + user + "\"}}"),
            ("GET", $"/v1/memories/?user_id={user}", ""),
            ("POST", "/v2/memories/search/", "{\"query\":\"deeply nested\",\"filters\":{\"user_id\":\"" + user + "\"}}"),
            ("GET", "/v1/kv/deep", ""),
            ("GET", "/v1/kv/deep?history=true", ""),
            ("POST", "/v1/kv/mget", "{\"keys\":[\"deep\"]}"),
        })
        {
            var response = await RawHttp.RequestAsync(_server.BaseAddress, method, path, body, Timeout);
            response.Status.Should().Be(200, $"{method} {path}: {response.Body[..Math.Min(300, response.Body.Length)]}");
            // Whole and well-formed: a response cut off half-way would not parse.
            using var parsed = JsonDocument.Parse(response.Body, new JsonDocumentOptions { MaxDepth = 128 });
            response.Body.Should().Contain(deep, $"{method} {path} carries the value whole");
        }

        await using var mcp = await McpConnections.ConnectHttpAsync(_server);
        foreach (var (tool, arguments) in new[] { ("memory_search", "{\"query\":\"deeply nested\"}"), ("memory_get", "{\"id\":\"" + memory.Id + "\"}"), ("kv_get", "{\"key\":\"deep\"}") })
        {
            var result = await mcp.CallAsync(tool, arguments);
            result.IsError.Should().NotBe(true, result.Text());
            result.Text().Should().Contain(deep, tool);
        }
    }
}
