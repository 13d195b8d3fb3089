using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Mem0;

/// <summary>
/// Requests the mem0-compatible API refuses (found by a hostile-input probe): a refusal writes nothing, a value of the
/// wrong type is a 400 naming its field instead of being dropped, and a 404 names the id as the client sent it.
/// </summary>
public sealed class Mem0RefusalTests
{
    private static HttpClient TokenClient(EngramServer server, string key)
    {
        var client = new HttpClient { BaseAddress = server.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Token", key);
        return client;
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private static StringContent Raw(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(status, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<string> DetailAsync(HttpResponseMessage response, HttpStatusCode status) =>
        (await BodyAsync(response, status)).GetProperty("detail").GetString()!;

    private static async Task<string> AddAsync(HttpClient mem0, string text)
    {
        var added = await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = text, user_id = "u1", infer = false })), HttpStatusCode.OK);
        return added.GetProperty("results")[0].GetProperty("id").GetString()!;
    }

    private static async Task<List<string?>> StoredTextsAsync(HttpClient mem0)
    {
        var all = await BodyAsync(await mem0.PostAsync("/v3/memories/", Json(new { filters = new { } })), HttpStatusCode.OK);
        return [.. all.GetProperty("results").EnumerateArray().Select(m => m.GetProperty("memory").GetString())];
    }

    public static TheoryData<string, string> BadTexts => new()
    {
        { "   ", "content must not be empty or only white space" },
        { new string('x', 40_000), "content has 40000 characters; the limit is 32768" },
        { "a\u0000b", "NUL" },
    };

    [Theory]
    [MemberData(nameof(BadTexts))]
    public async Task A_batch_update_with_one_text_the_store_refuses_is_400_naming_it_and_changes_no_memory(string text, string rule)
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var a = await AddAsync(mem0, "batch one");
        var c = await AddAsync(mem0, "batch two");

        var detail = await DetailAsync(await mem0.SendAsync(new HttpRequestMessage(HttpMethod.Put, "/v1/batch/")
        {
            Content = Json(new { memories = new[] { new { memory_id = a, text = "batch one CHANGED" }, new { memory_id = c, text } } }),
        }), HttpStatusCode.BadRequest);
        detail.Should().StartWith("memories[1].text: ").And.Contain(rule);

        (await StoredTextsAsync(mem0)).Should().BeEquivalentTo(["batch one", "batch two"]);
        (await BodyAsync(await mem0.GetAsync($"/v1/memories/{a}/history/"), HttpStatusCode.OK)).GetArrayLength().Should().Be(1, "no update was written");
    }

    [Fact]
    public async Task An_add_of_several_messages_with_one_the_store_refuses_stores_none_of_them()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var messages = new[]
        {
            new { role = "user", content = "first message" },
            new { role = "assistant", content = "second message" },
            new { role = "user", content = new string('x', 40_000) },
        };
        var detail = await DetailAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages, user_id = "u1", infer = false })), HttpStatusCode.BadRequest);
        detail.Should().Be("messages[2].content: content has 40000 characters; the limit is 32768");
        (await StoredTextsAsync(mem0)).Should().BeEmpty();

        // The same conversation without the refused message is stored whole, in order, in one step.
        var added = await BodyAsync(await mem0.PostAsync("/v3/memories/add/", Json(new { messages = messages[..2], user_id = "u1", infer = false })), HttpStatusCode.OK);
        added.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("memory").GetString()).Should().Equal("first message", "second message");
        added.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("event").GetString()).Should().Equal("ADD", "ADD");
        var again = await BodyAsync(await mem0.PostAsync("/v3/memories/add/", Json(new { messages = messages[..1], user_id = "u1", infer = false })), HttpStatusCode.OK);
        again.GetProperty("results")[0].GetProperty("event").GetString().Should().Be("NONE", "a duplicate is answered with the memory it duplicates");
        again.GetProperty("results")[0].GetProperty("id").GetString().Should().Be(added.GetProperty("results")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_batch_delete_naming_a_memory_twice_deletes_it_once_and_succeeds()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var a = await AddAsync(mem0, "deleted once");
        await AddAsync(mem0, "kept");

        var body = await BodyAsync(await mem0.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/v1/batch/")
        {
            Content = Json(new { memories = new[] { new { memory_id = a }, new { memory_id = a }, new { memory_id = Ulid.FromAny(a) } } }),
        }), HttpStatusCode.OK);
        body.GetProperty("message").GetString().Should().Be("Successfully deleted 1 memories");
        (await StoredTextsAsync(mem0)).Should().Equal("kept");
    }

    public static TheoryData<string, string, string> WrongTypes => new()
    {
        { "/v1/memories/", """{"messages":"typed probe","user_id":"u1","infer":"false"}""", "infer must be true or false (got a string)" },
        { "/v3/memories/add/", """{"messages":"typed probe","user_id":"u1","infer":0}""", "infer must be true or false (got a number)" },
        { "/v1/memories/", """{"messages":"typed probe","user_id":"u1","infer":false,"metadata":"notanobject"}""", "metadata must be an object (got a string)" },
        { "/v3/memories/add/", """{"messages":"typed probe","user_id":"u1","infer":false,"metadata":[1,2]}""", "metadata must be an object (got an array)" },
        { "/v2/memories/search/", """{"query":"memory","threshold":"0.99"}""", "threshold must be a number (got a string)" },
        { "/v3/memories/search/", """{"query":"memory","threshold":true}""", "threshold must be a number (got a boolean)" },
        { "/v2/memories/", """{"filters":{"created_at":{"gte":"notadate"}}}""", "created_at takes a date: ISO 8601" },
        { "/v3/memories/", """{"filters":{"AND":[{"updated_at":{"in":["2024-05-01","yesterday"]}}]}}""", "updated_at takes a date: ISO 8601" },
        { "/v3/memories/search/", """{"query":"memory","filters":{"created_at":"soon"}}""", "created_at takes a date: ISO 8601" },
    };

    [Theory]
    [MemberData(nameof(WrongTypes))]
    public async Task A_value_of_the_wrong_type_is_400_naming_the_field_and_stores_nothing(string path, string body, string detail)
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        await AddAsync(mem0, "kept memory");

        (await DetailAsync(await mem0.PostAsync(path, Raw(body)), HttpStatusCode.BadRequest)).Should().StartWith(detail);
        (await StoredTextsAsync(mem0)).Should().Equal("kept memory");
    }

    [Fact]
    public async Task Dates_in_filters_are_taken_as_iso_8601_or_unix_seconds_and_null_options_as_not_given()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var added = await BodyAsync(await mem0.PostAsync("/v1/memories/", Raw("""{"messages":"dated memory","user_id":"u1","infer":false,"metadata":null}""")), HttpStatusCode.OK);
        added.GetProperty("results")[0].GetProperty("metadata").ValueKind.Should().Be(JsonValueKind.Null);

        async Task<int> CountAsync(string filters) =>
            (await BodyAsync(await mem0.PostAsync("/v3/memories/", Raw($$"""{"filters":{{filters}}}""")), HttpStatusCode.OK)).GetProperty("count").GetInt32();
        (await CountAsync("""{"created_at":{"gte":"2020-01-01"}}""")).Should().Be(1);
        (await CountAsync("""{"created_at":{"gte":"2020-01-01T00:00:00Z","lt":4102444800}}""")).Should().Be(1);
        (await CountAsync("""{"updated_at":{"lt":1577836800}}""")).Should().Be(0);
        (await CountAsync("""{"created_at":"*"}""")).Should().Be(1);

        var found = await BodyAsync(await mem0.PostAsync("/v3/memories/search/", Raw("""{"query":"dated","threshold":null,"filters":{"user_id":"u1"}}""")), HttpStatusCode.OK);
        found.GetProperty("results").GetArrayLength().Should().Be(1);
    }

    [Fact]
    public async Task A_missing_memory_is_named_as_the_client_sent_it()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var uuid = Ulid.ToUuid(Ulid.NewUlid(DateTimeOffset.UtcNow));
        var ulid = Ulid.FromAny(uuid);

        var answers = new List<(string Route, HttpResponseMessage Response)>
        {
            ("get", await mem0.GetAsync($"/v1/memories/{uuid}/")),
            ("update", await mem0.PutAsync($"/v1/memories/{uuid}/", Json(new { text = "new text" }))),
            ("delete", await mem0.DeleteAsync($"/v1/memories/{uuid}/")),
            ("history", await mem0.GetAsync($"/v1/memories/{uuid}/history/")),
            ("batch update", await mem0.SendAsync(new HttpRequestMessage(HttpMethod.Put, "/v1/batch/") { Content = Json(new { memories = new[] { new { memory_id = uuid, text = "x" } } }) })),
            ("batch delete", await mem0.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/v1/batch/") { Content = Json(new { memories = new[] { new { memory_id = uuid } } }) })),
        };
        foreach (var (route, response) in answers)
        {
            var detail = await DetailAsync(response, HttpStatusCode.NotFound);
            detail.Should().Contain($"'{uuid}'", route).And.NotContain(ulid, route);
        }
        // The ULID form, as sent, is named as sent too.
        (await DetailAsync(await mem0.GetAsync($"/v1/memories/{ulid}/"), HttpStatusCode.NotFound)).Should().Be($"no memory with id '{ulid}'");
    }

    [Theory]
    [InlineData("2147483647")]
    [InlineData("1001")]
    [InlineData("0")]
    public async Task Entities_page_size_is_bounded_as_the_memory_lists_are(string pageSize)
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        await AddAsync(mem0, "an entity's memory");

        (await DetailAsync(await mem0.GetAsync($"/v1/entities/?page_size={pageSize}"), HttpStatusCode.BadRequest))
            .Should().Be("page_size must be between 1 and 1000");
        (await DetailAsync(await mem0.GetAsync($"/v1/memories/?user_id=u1&page_size={pageSize}"), HttpStatusCode.BadRequest))
            .Should().Be("page_size must be between 1 and 1000");
        var page = await BodyAsync(await mem0.GetAsync("/v1/entities/?page_size=1000"), HttpStatusCode.OK);
        page.GetProperty("results").GetArrayLength().Should().Be(1);
        (await BodyAsync(await mem0.GetAsync("/v1/entities/"), HttpStatusCode.OK)).GetProperty("count").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task An_add_with_nothing_to_store_is_400_saying_why_as_on_engrams_own_route()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));

        // No model: the fallback stores user messages only, and this conversation has none.
        var detail = await DetailAsync(await mem0.PostAsync("/v1/memories/", Json(new
        {
            messages = new[] { new { role = "assistant", content = "Hello, how can I help?" } },
            user_id = "u1",
        })), HttpStatusCode.BadRequest);
        detail.Should().StartWith("nothing to store: no inference ran: no language model is configured").And.Contain("infer=false");
        (await DetailAsync(await mem0.PostAsync("/v3/memories/add/", Json(new
        {
            messages = new[] { new { role = "system", content = "be nice" }, new { role = "user", content = "  " } },
            user_id = "u1",
            infer = false,
        })), HttpStatusCode.BadRequest)).Should().StartWith("nothing to store");
        (await StoredTextsAsync(mem0)).Should().BeEmpty();

        // infer=false stores the assistant's message, as mem0 does.
        var added = await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new
        {
            messages = new[] { new { role = "assistant", content = "Hello, how can I help?" } },
            user_id = "u1",
            infer = false,
        })), HttpStatusCode.OK);
        added.GetProperty("results")[0].GetProperty("memory").GetString().Should().Be("Hello, how can I help?");
    }
}
