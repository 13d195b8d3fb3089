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
/// Lone surrogates and invalid UTF-8 (issue 10, defect 2): refused on every write path, at any depth,
/// in values and in object keys; a row stored before that rule still reads, and a response is never
/// cut off after its status line. The old server stored <c>{"value":"\ud800"}</c> (201) and then
/// answered every read of the key with 400 "malformed JSON".
/// </summary>
public sealed class InvalidUnicodeTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();


    [Theory]
    [InlineData("POST", "/v1/memories", """{"content":"\ud800"}""", "content")]
    [InlineData("POST", "/v1/memories", """{"content":"a\udc00b"}""", "content")]
    [InlineData("POST", "/v1/memories", """{"content":"x","tags":["ok","\ud800"]}""", "tags")]
    [InlineData("POST", "/v1/memories", """{"content":"x","entities":["\ud800"]}""", "entities")]
    [InlineData("POST", "/v1/memories", """{"content":"x","user_id":"\ud800"}""", "user_id")]
    [InlineData("POST", "/v1/memories", """{"content":"x","metadata":{"a":"\ud800"}}""", "metadata")]
    [InlineData("POST", "/v1/memories", """{"content":"x","metadata":{"k\ud800":1}}""", "metadata")]
    [InlineData("POST", "/v1/memories", """{"content":"x","metadata":{"a":{"b":[{"c":"x\udfff"}]}}}""", "metadata")]
    [InlineData("PUT", "/v1/kv/k", """{"value":"\ud800"}""", "value")]
    [InlineData("PUT", "/v1/kv/k", """{"value":{"k\ud800":1}}""", "value")]
    [InlineData("PUT", "/v1/kv/k", """{"value":[1,{"a":["ok","\udc00"]}]}""", "value")]
    [InlineData("PUT", "/v1/kv/k", """{"value":{"a":{"b":{"\udbff":"c"}}}}""", "value")]
    [InlineData("POST", "/v1/kv/mset", """{"items":[{"key":"k","value":"\ud800"}]}""", "items[0].value")]
    [InlineData("POST", "/v1/graph/entities", """{"entities":[{"name":"A\ud800","entity_type":"person"}]}""", null)]
    [InlineData("POST", "/v1/graph/entities", """{"entities":[{"name":"A","entity_type":"person","observations":["\ud800"]}]}""", null)]
    [InlineData("POST", "/v1/graph/relations", """{"relations":[{"from":"A","to":"B","relation_type":"\ud800"}]}""", null)]
    public async Task A_lone_surrogate_is_refused_where_it_comes_in(string method, string path, string json, string? field)
    {
        var response = await _server.SendJsonAsync(method, path, json);
        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
        problem.GetProperty("detail").GetString().Should().Contain("Unicode");

        (await _server.Client.GetAsync("/v1/kv/k")).StatusCode.Should().Be(HttpStatusCode.NotFound, "nothing was stored");
        var listing = await (await _server.Client.GetAsync("/v1/memories")).JsonAsync();
        listing.GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task An_update_with_a_lone_surrogate_in_metadata_is_refused_and_the_memory_keeps_reading()
    {
        var id = (await _server.CreateAsync(new { content = "kept", metadata = new { a = 1 } })).GetProperty("id").GetString();
        var response = await _server.PatchJsonAsync($"/v1/memories/{id}", """{"metadata":{"nested":{"x\udbff":"y"}}}""");
        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest)).GetProperty("detail").GetString().Should().Contain("Unicode");
        var read = await _server.Client.GetAsync($"/v1/memories/{id}");
        read.StatusCode.Should().Be(HttpStatusCode.OK);
        (await read.JsonAsync()).GetProperty("metadata").GetProperty("a").GetInt32().Should().Be(1);
    }

    [Theory]
    [InlineData("/v1/memories", "{\"content\":\"a\u00FFb\"}")]
    [InlineData("/v1/kv/raw", "{\"value\":{\"a\":\"\u00C3\"}}")]
    [InlineData("/v1/memories", "{\"content\":\"x\",\"metadata\":{\"a\":\"\u00C3\"}}")]
    [InlineData("/v1/kv/raw", "{\"value\":{\"\u00FE\":1}}")]
    public async Task Invalid_UTF8_bytes_are_refused(string path, string latin1Json)
    {
        // Each \u00NN above becomes one raw byte (Latin-1), not valid UTF-8 where it stands.
        var content = new ByteArrayContent(Encoding.Latin1.GetBytes(latin1Json));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        var response = path.StartsWith("/v1/kv", StringComparison.Ordinal) ? await _server.Client.PutAsync(path, content) : await _server.Client.PostAsync(path, content);
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Valid_surrogate_pairs_are_kept()
    {
        var put = await _server.SendJsonAsync("PUT", "/v1/kv/emoji", """{"value":{"\ud83d\ude00":"\ud83c\udf89"}}""");
        put.StatusCode.Should().Be(HttpStatusCode.Created);
        var value = (await (await _server.Client.GetAsync("/v1/kv/emoji")).JsonAsync()).GetProperty("value");
        value.GetProperty("😀").GetString().Should().Be("🎉");
        (await _server.CreateAsync(new { content = "party 🎉", tags = new[] { "🎉" } })).GetProperty("content").GetString().Should().Be("party 🎉");
    }

    [Fact]
    public async Task A_row_stored_with_a_lone_surrogate_before_the_rule_still_reads_everywhere_in_full()
    {
        // Written below the service, as the old server wrote it.
        var store = _server.Services.GetRequiredService<IKeyValueStore>();
        var caller = Caller.Default("test");
        await store.SetKvAsync(caller, new KvWrite("bad", "{\"a\":\"\\ud800\",\"k\\udc00\":[1]}", null), WriteDurability.Full);
        // A large value in front: the old server had sent its 200 and part of the body before failing.
        var big = new string('b', 300_000);
        (await _server.SendJsonAsync("PUT", "/v1/kv/big", JsonSerializer.Serialize(new { value = big }))).StatusCode.Should().Be(HttpStatusCode.Created);

        var get = await _server.Client.GetAsync("/v1/kv/bad");
        get.StatusCode.Should().Be(HttpStatusCode.OK);
        var text = await get.Content.ReadAsStringAsync();
        text.Should().Contain("\\ud800").And.Contain("k\\udc00");
        JsonDocument.Parse(text).RootElement.GetProperty("value").ValueKind.Should().Be(JsonValueKind.Object);

        var history = await _server.Client.GetAsync("/v1/kv/bad?history=true");
        history.StatusCode.Should().Be(HttpStatusCode.OK);
        (await history.JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(1);

        var mget = await _server.SendJsonAsync("POST", "/v1/kv/mget", """{"keys":["big","bad","big"]}""");
        mget.StatusCode.Should().Be(HttpStatusCode.OK);
        var items = (await mget.JsonAsync()).GetProperty("items");
        items.GetArrayLength().Should().Be(3);
        items[0].GetProperty("value").GetString().Should().Be(big);
        items[1].GetProperty("found").GetBoolean().Should().BeTrue();
        items[2].GetProperty("value").GetString().Should().Be(big);
    }

    [Fact]
    public async Task A_memory_stored_with_a_lone_surrogate_in_its_metadata_still_reads()
    {
        // Written below the service, as an older server or another tool could have.
        var store = _server.Services.GetRequiredService<IMemoryStore>();
        var now = DateTimeOffset.UtcNow;
        var memory = new Memory
        {
            Id = Ulid.NewUlid(now),
            Content = "old row",
            ContentHash = ContentNormalizer.Hash("old row"),
            Type = "fact",
            Tier = MemoryTier.LongTerm,
            Importance = 0.5,
            Tags = [],
            Entities = [],
            Metadata = JsonDocument.Parse("{\"bad\":\"\\ud800\",\"pad\":\"" + new string('p', 100_000) + "\"}").RootElement.Clone(),
            CreatedAt = now,
            UpdatedAt = now,
            Version = 1,
        };
        await store.CreateAsync(Caller.Default("test"), memory, DuplicatePolicy.Allow);
        await _server.CreateAsync(new { content = "a newer row" });

        var get = await _server.Client.GetAsync($"/v1/memories/{memory.Id}");
        get.StatusCode.Should().Be(HttpStatusCode.OK);
        (await get.Content.ReadAsStringAsync()).Should().Contain("\\ud800");
        var list = await _server.Client.GetAsync("/v1/memories");
        list.StatusCode.Should().Be(HttpStatusCode.OK);
        (await list.JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(2);
        (await _server.Client.GetAsync($"/v1/memories/{memory.Id}/history")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
