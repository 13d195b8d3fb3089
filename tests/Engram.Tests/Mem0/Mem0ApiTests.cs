using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Mem0;

/// <summary>The mem0-compatible API over plain HTTP: what the npm clients do not show (ids in both forms, error bodies, paths, `*`, infer).</summary>
public sealed class Mem0ApiTests
{
    private static HttpClient TokenClient(EngramServer server, string key)
    {
        var client = new HttpClient { BaseAddress = server.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Token", key);
        return client;
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(status, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public void Ulid_and_uuid_forms_carry_the_same_128_bits()
    {
        var ulid = Ulid.NewUlid(DateTimeOffset.UtcNow);
        var uuid = Ulid.ToUuid(ulid);
        uuid.Should().MatchRegex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
        Ulid.FromAny(uuid).Should().Be(ulid);
        Ulid.FromAny(uuid.ToUpperInvariant().Replace("-", "", StringComparison.Ordinal)).Should().Be(ulid);
        Ulid.FromAny(ulid).Should().Be(ulid);
        Ulid.FromAny("not-an-id").Should().Be("not-an-id");
        Ulid.ToUuid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ").Should().Be("ffffffff-ffff-ffff-ffff-ffffffffffff");
    }

    [Fact]
    public async Task Ids_are_uuids_here_and_accepted_in_both_forms_on_both_apis()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var added = await BodyAsync(await mem0.PostAsync("/v3/memories/add/", Json(new { messages = "I live in Lisbon", user_id = "u1", infer = false, org_id = "x", async_mode = true, output_format = "v1.1" })), HttpStatusCode.OK);
        var uuid = added.GetProperty("results")[0].GetProperty("id").GetString()!;
        var ulid = Ulid.FromAny(uuid);
        ulid.Should().NotBe(uuid);

        (await BodyAsync(await mem0.GetAsync($"/v1/memories/{ulid}/"), HttpStatusCode.OK)).GetProperty("id").GetString().Should().Be(uuid);
        // Without the trailing slash the shared path is Engram's own route (whatever the key's scheme): Engram's shape.
        (await BodyAsync(await mem0.GetAsync($"/v1/memories/{uuid}"), HttpStatusCode.OK)).GetProperty("content").GetString().Should().Be("I live in Lisbon");
        (await BodyAsync(await mem0.GetAsync("/v1/ping"), HttpStatusCode.OK)).GetProperty("status").GetString().Should().Be("ok");
        // Engram's own route (Bearer, no trailing slash) takes the UUID form too and answers in its own shape.
        var engram = await BodyAsync(await server.ClientWithKey(await server.CreateKeyAsync("default", Role.Read)).GetAsync($"/v1/memories/{uuid}"), HttpStatusCode.OK);
        engram.GetProperty("id").GetString().Should().Be(ulid);
        engram.GetProperty("content").GetString().Should().Be("I live in Lisbon");
        engram.GetProperty("source").GetString().Should().Be("mem0");
    }

    [Fact]
    public async Task An_add_and_an_update_answer_the_times_a_read_shows()
    {
        // The store keeps milliseconds; the answers showed the clock's ticks (a probe in session 44).
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var added = (await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = "I live in Lisbon", user_id = "u1", infer = false })), HttpStatusCode.OK))
            .GetProperty("results")[0];
        var id = added.GetProperty("id").GetString()!;
        var read = await BodyAsync(await mem0.GetAsync($"/v1/memories/{id}/"), HttpStatusCode.OK);
        added.GetProperty("created_at").GetString().Should().Be(read.GetProperty("created_at").GetString());
        added.GetProperty("created_at").GetString().Should().MatchRegex(@"\.\d{3}0000\+00:00$");

        var updated = await BodyAsync(await mem0.PutAsync($"/v1/memories/{id}/", Json(new { text = "I live in Porto" })), HttpStatusCode.OK);
        var reread = await BodyAsync(await mem0.GetAsync($"/v1/memories/{id}/"), HttpStatusCode.OK);
        reread.GetProperty("updated_at").GetString().Should().MatchRegex(@"\.\d{3}0000\+00:00$");
        updated.GetProperty("updated_at").GetString().Should().Be(reread.GetProperty("updated_at").GetString());
    }

    [Fact]
    public async Task Errors_are_detail_bodies_with_the_platform_statuses()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        using var bad = TokenClient(server, "egm_nope");
        (await BodyAsync(await bad.GetAsync("/v1/ping/"), HttpStatusCode.Unauthorized)).GetProperty("detail").GetString().Should().NotBeNullOrEmpty();
        var ping = await BodyAsync(await mem0.GetAsync("/v1/ping"), HttpStatusCode.OK);
        ping.GetProperty("status").GetString().Should().Be("ok");
        ping.GetProperty("org_id").GetString().Should().Be("default");

        var missing = await BodyAsync(await mem0.GetAsync($"/v1/memories/{Guid.NewGuid()}/"), HttpStatusCode.NotFound);
        missing.GetProperty("detail").GetString().Should().Contain("no memory");
        (await BodyAsync(await mem0.PostAsync("/v3/memories/search/", Json(new { filters = new { user_id = "u" } })), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString().Should().Contain("query");
        (await BodyAsync(await mem0.PostAsync("/v3/memories/search/", Json(new { query = "x", filters = new { user_id = new { near = 1 } } })), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString().Should().Contain("unknown operator");
        (await BodyAsync(await mem0.DeleteAsync("/v1/memories/"), HttpStatusCode.BadRequest)).GetProperty("detail").GetString().Should().Contain("filter");
        (await BodyAsync(await mem0.DeleteAsync("/v2/entities/planet/earth/"), HttpStatusCode.BadRequest)).GetProperty("detail").GetString().Should().Contain("user, agent, app or run");
        (await BodyAsync(await mem0.PostAsync("/v3/memories/add/", Json(new { messages = Array.Empty<object>() })), HttpStatusCode.BadRequest)).GetProperty("detail").GetString().Should().Contain("messages");
        (await BodyAsync(await mem0.PostAsync("/v3/memories/add/", new StringContent("{\"messages\":", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest)).GetProperty("detail").GetString().Should().NotBeNullOrEmpty();
    }

    [Fact]
    public async Task In_and_nin_take_a_single_value_as_a_one_item_list()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = "hello from mem0", user_id = "m0" })), HttpStatusCode.OK);
        await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = "hello from another user", user_id = "m1" })), HttpStatusCode.OK);

        static IEnumerable<string?> Users(JsonElement body) =>
            (body.ValueKind == JsonValueKind.Array ? body : body.GetProperty("results")).EnumerateArray().Select(m => m.GetProperty("user_id").GetString());

        var found = await BodyAsync(await mem0.PostAsync("/v1/memories/search/", Json(new { query = "hello", filters = new { user_id = new { @in = "m0" } } })), HttpStatusCode.OK);
        Users(found).Should().Equal("m0");
        var listed = await BodyAsync(await mem0.PostAsync("/v2/memories/", Json(new { filters = new { user_id = new { nin = "zz" } } })), HttpStatusCode.OK);
        Users(listed).Should().BeEquivalentTo(["m0", "m1"]);
        listed = await BodyAsync(await mem0.PostAsync("/v3/memories/", Json(new { filters = new { OR = new object[] { new { user_id = new { nin = "m0" } } } } })), HttpStatusCode.OK);
        Users(listed).Should().Equal("m1");
        // The same filter twice in one process (the request's nodes are read, never moved) and a list as before.
        found = await BodyAsync(await mem0.PostAsync("/v3/memories/search/", Json(new { query = "hello", filters = new { user_id = new { @in = "m0" } } })), HttpStatusCode.OK);
        Users(found).Should().Equal("m0");
        found = await BodyAsync(await mem0.PostAsync("/v3/memories/search/", Json(new { query = "hello", filters = new { user_id = new { @in = new[] { "m0", "m1" } } } })), HttpStatusCode.OK);
        Users(found).Should().BeEquivalentTo(["m0", "m1"]);
    }

    public static TheoryData<string, string> BadTopLevelIds => new()
    {
        { "user_id", "5" },
        { "user_id", "\"\"" },
        { "userId", "\"\"" },
        { "agent_id", "true" },
        { "run_id", "{}" },
        { "app_id", "[\"a\"]" },
        { "agentId", "7" },
    };

    [Theory]
    [MemberData(nameof(BadTopLevelIds))]
    public async Task A_top_level_id_that_is_not_a_non_empty_string_is_400_naming_it_on_every_route_never_dropped(string field, string value)
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = "kept memory", user_id = "u1", infer = false })), HttpStatusCode.OK);

        StringContent Body(string rest) => new($$"""{"{{field}}":{{value}},{{rest}}}""", Encoding.UTF8, "application/json");
        var refused = new List<(string Route, HttpResponseMessage Response)>
        {
            ("add v1", await mem0.PostAsync("/v1/memories/", Body("\"messages\":\"scope probe A\",\"infer\":false"))),
            ("add v3", await mem0.PostAsync("/v3/memories/add/", Body("\"messages\":\"scope probe B\",\"infer\":false"))),
            ("search v1", await mem0.PostAsync("/v1/memories/search/", Body("\"query\":\"memory\""))),
            ("search v2", await mem0.PostAsync("/v2/memories/search/", Body("\"query\":\"memory\""))),
            ("search v3", await mem0.PostAsync("/v3/memories/search/", Body("\"query\":\"memory\""))),
            ("list v2", await mem0.PostAsync("/v2/memories/", Body("\"filters\":{}"))),
            ("list v3", await mem0.PostAsync("/v3/memories/", Body("\"filters\":{}"))),
        };
        if (value == "\"\"")
        {
            // The query string has no types: only an empty value can be wrong there.
            refused.Add(("list query", await mem0.GetAsync($"/v1/memories/?{field}=")));
            refused.Add(("delete query", await mem0.DeleteAsync($"/v1/memories/?{field}=")));
            refused.Add(("list query, blank", await mem0.GetAsync($"/v1/memories/?{field}=%20%20")));
        }
        foreach (var (route, response) in refused)
        {
            var text = await response.Content.ReadAsStringAsync();
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, $"{route}: {text}");
            JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString().Should().StartWith($"{field} must be a non-empty string", route);
        }

        // Nothing was stored, nothing deleted; null stays "not given".
        var all = await BodyAsync(await mem0.PostAsync("/v3/memories/", Json(new { filters = new { } })), HttpStatusCode.OK);
        all.GetProperty("results").EnumerateArray().Select(m => m.GetProperty("memory").GetString()).Should().Equal("kept memory");
        var unset = await BodyAsync(await mem0.PostAsync("/v1/memories/search/", new StringContent($$"""{"query":"memory","{{field}}":null}""", Encoding.UTF8, "application/json")), HttpStatusCode.OK);
        unset.GetProperty("results").GetArrayLength().Should().Be(1);
    }

    [Fact]
    public async Task An_update_without_text_metadata_or_expiration_date_is_400_naming_text_and_changes_nothing()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var added = await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = "I live in Lisbon", user_id = "u1", infer = false })), HttpStatusCode.OK);
        var id = added.GetProperty("results")[0].GetProperty("id").GetString();

        async Task<string> RefusedAsync(string body)
        {
            using var response = await mem0.PutAsync($"/v1/memories/{id}/", new StringContent(body, Encoding.UTF8, "application/json"));
            return (await BodyAsync(response, HttpStatusCode.BadRequest)).GetProperty("detail").GetString()!;
        }
        (await RefusedAsync("{}")).Should().StartWith("text is required");
        (await RefusedAsync("""{"content":"I live in Porto"}""")).Should().StartWith("text is required").And.Contain("'content'");
        (await RefusedAsync("""{"text":null}""")).Should().StartWith("text must be a string");
        (await RefusedAsync("""{"text":5}""")).Should().StartWith("text must be a string");
        (await RefusedAsync("""{"metadata":"vip"}""")).Should().StartWith("metadata must be an object");
        (await RefusedAsync("""{"text":"I live in Porto","timestamp":1700000000}""")).Should().StartWith("timestamp");
        var unchanged = await BodyAsync(await mem0.GetAsync($"/v1/memories/{id}/"), HttpStatusCode.OK);
        unchanged.GetProperty("memory").GetString().Should().Be("I live in Lisbon");
        unchanged.GetProperty("metadata").ValueKind.Should().Be(JsonValueKind.Null);

        // What mem0's update takes: text, metadata (alone or together), expiration_date.
        (await BodyAsync(await mem0.PutAsync($"/v1/memories/{id}/", Json(new { text = "I live in Porto" })), HttpStatusCode.OK))
            .GetProperty("memory").GetString().Should().Be("I live in Porto");
        var tagged = await BodyAsync(await mem0.PutAsync($"/v1/memories/{id}/", Json(new { metadata = new { tier = "vip" } })), HttpStatusCode.OK);
        tagged.GetProperty("memory").GetString().Should().Be("I live in Porto");
        tagged.GetProperty("metadata").GetProperty("tier").GetString().Should().Be("vip");
        (await BodyAsync(await mem0.PutAsync($"/v1/memories/{id}/", Json(new { expiration_date = "2999-01-01" })), HttpStatusCode.OK))
            .GetProperty("expiration_date").GetString().Should().StartWith("2999-01-02");
    }

    [Fact]
    public async Task Star_deletes_every_memory_with_that_kind_of_id_and_keeps_the_rest()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = new[] { new { role = "user", content = "agent note" } }, agent_id = "a1", infer = false })), HttpStatusCode.OK);
        await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = new[] { new { role = "user", content = "user note" } }, user_id = "u1", infer = false })), HttpStatusCode.OK);
        await BodyAsync(await mem0.PostAsync("/v1/memories/", Json(new { messages = new[] { new { role = "user", content = "run note" } }, run_id = "r1", app_id = "app", infer = false })), HttpStatusCode.OK);

        (await BodyAsync(await mem0.DeleteAsync("/v1/memories/?agent_id=*"), HttpStatusCode.OK)).GetProperty("deleted").GetInt32().Should().Be(1);
        var left = await BodyAsync(await mem0.PostAsync("/v3/memories/", Json(new { filters = new { } })), HttpStatusCode.OK);
        left.GetProperty("count").GetInt32().Should().Be(2);
        left.GetProperty("results").EnumerateArray().Select(m => m.GetProperty("memory").GetString()).Should().BeEquivalentTo(["user note", "run note"]);
        var run = left.GetProperty("results").EnumerateArray().Single(m => m.GetProperty("memory").GetString() == "run note");
        run.GetProperty("run_id").GetString().Should().Be("r1");
        run.GetProperty("app_id").GetString().Should().Be("app");
        // Stored under Engram's names: run_id is the session, app_id the namespace.
        var engram = await BodyAsync(await server.ClientWithKey(await server.CreateKeyAsync("default", Role.Read)).GetAsync("/v1/memories?session_id=r1&namespace=app"), HttpStatusCode.OK);
        engram.GetProperty("items").GetArrayLength().Should().Be(1);
    }

    [Fact]
    public async Task Without_a_model_infer_stores_user_messages_verbatim_and_says_so()
    {
        await using var server = await EngramServer.StartAsync();
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var added = await BodyAsync(await mem0.PostAsync("/v3/memories/add/", Json(new
        {
            messages = new[] { new { role = "system", content = "be nice" }, new { role = "user", content = "I am vegetarian" }, new { role = "assistant", content = "Noted" } },
            user_id = "u1",
            metadata = new { k = "v" },
        })), HttpStatusCode.OK);
        added.GetProperty("infer").GetBoolean().Should().BeFalse();
        added.GetProperty("message").GetString().Should().Contain("no inference ran").And.Contain("LLM_BASE_URL");
        added.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("memory").GetString()).Should().Equal("I am vegetarian");
        var eventId = added.GetProperty("event_id").GetString();
        var evt = await BodyAsync(await mem0.GetAsync($"/v1/event/{eventId}/"), HttpStatusCode.OK);
        evt.GetProperty("status").GetString().Should().Be("SUCCEEDED");
        evt.GetProperty("results")[0].GetProperty("metadata").GetProperty("k").GetString().Should().Be("v");
    }

    [Fact]
    public async Task With_a_model_infer_queues_an_extraction_whose_event_follows_the_job_to_the_memories_it_wrote()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = r => r.AllText.Contains("keep a memory store current", StringComparison.Ordinal)
            ? FakeReply.Json(new { decisions = new[] { new { fact = 1, @event = "ADD", memory = (int?)null, reason = "new" } } })
            : FakeReply.Json(new { facts = new[] { new { text = "Is vegetarian", type = "preference", entities = Array.Empty<string>(), importance = 0.8, valence = 0.1 } } });
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = fake.BaseUrl;
            o.Llm.Model = "fake";
        });
        using var mem0 = TokenClient(server, await server.CreateKeyAsync("default", Role.Write));
        var added = await BodyAsync(await mem0.PostAsync("/v3/memories/add/", Json(new
        {
            messages = new[] { new { role = "user", content = "I am vegetarian" }, new { role = "assistant", content = "Noted" } },
            user_id = "u1",
        })), HttpStatusCode.OK);
        added.GetProperty("status").GetString().Should().Be("PENDING");
        var eventId = added.GetProperty("event_id").GetString();

        JsonElement evt;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((evt = await BodyAsync(await mem0.GetAsync($"/v1/event/{eventId}/"), HttpStatusCode.OK)).GetProperty("status").GetString() == "PENDING")
        {
            waited.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(60), "the extraction job finishes");
            await Task.Delay(100);
        }
        evt.GetProperty("status").GetString().Should().Be("SUCCEEDED", evt.ToString());
        evt.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("memory").GetString()).Should().Equal("Is vegetarian");
        var listed = await BodyAsync(await mem0.GetAsync("/v1/memories/?user_id=u1"), HttpStatusCode.OK);
        listed.ToString().Should().Contain("Is vegetarian").And.NotContain("I am vegetarian", "the model's fact is stored, not the message");
    }
}
