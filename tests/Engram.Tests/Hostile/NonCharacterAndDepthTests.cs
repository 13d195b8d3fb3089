using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// What a hostile-input probe found in session 43: U+FFFE (valid Unicode that .NET's normalization refuses) gave 500s,
/// and a graph entity named with it broke every entity's memories; metadata nested just under the parser's limit was
/// stored, then could not be written inside a listing (400 "malformed JSON", or a 200 cut off half-way).
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

    [Theory]
    [InlineData(61)]
    [InlineData(62)]
    [InlineData(63)] // the deepest a request body (64 levels) can carry inside "metadata"
    public async Task Deep_metadata_reads_back_in_every_listing(int depth)
    {
        var metadata = string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
        var user = $"deep{depth}";
        var created = await RawHttp.RequestAsync(_server.BaseAddress, "POST", "/v1/memories",
            $$"""{"content":"deeply nested metadata","user_id":"{{user}}","metadata":{{metadata}}}""", Timeout);
        created.Status.Should().Be(201, created.Body);
        var id = JsonDocument.Parse(created.Body, new JsonDocumentOptions { MaxDepth = 128 }).RootElement.GetProperty("id").GetString();
        // Enough other memories after it that the listing's response is already under way when the deep one is written.
        for (var i = 0; i < 30; i++)
        {
            await _server.CreateAsync(new { content = $"filler {i} " + string.Concat(Enumerable.Repeat("lorem ipsum ", 100)), user_id = user });
        }
        foreach (var (method, path, body) in new[]
        {
            ("GET", $"/v1/memories?user_id={user}&limit=100", ""),
            ("GET", $"/v1/memories/{id}/history", ""),
            ("POST", "/v1/search", $$$"""{"query":"deeply nested","filters":{"user_id":"{{{user}}}"}}"""),
            ("GET", $"/v1/memories/?user_id={user}", ""),
            ("POST", "/v2/memories/search/", $$$"""{"query":"deeply nested","filters":{"user_id":"{{{user}}}"}}"""),
        })
        {
            var response = await RawHttp.RequestAsync(_server.BaseAddress, method, path, body, Timeout);
            response.Status.Should().Be(200, $"{method} {path}: {response.Body[..Math.Min(300, response.Body.Length)]}");
            // Whole and well-formed: a response cut off half-way would not parse.
            using var parsed = JsonDocument.Parse(response.Body, new JsonDocumentOptions { MaxDepth = 128 });
            response.Body.Should().Contain(metadata, $"{method} {path} carries the metadata whole");
        }
    }
}
