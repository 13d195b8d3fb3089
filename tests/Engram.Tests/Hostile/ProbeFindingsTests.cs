using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// What a hostile-input probe of the REST API found in session 41: keys and entity names the path could not reach,
/// cursors read leniently, a supersession link to nothing, type errors of nested fields named wrongly, an empty list
/// filter read as none, compressed bodies read as plain, and two keys in one request.
/// </summary>
public sealed class ProbeFindingsTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData("..", "/v1/kv/..")]
    [InlineData(".", "/v1/kv/.")]
    [InlineData("a/..", "/v1/kv/a/..")]
    [InlineData("a/../b", "/v1/kv/a/../b")]
    [InlineData("..", "/v1/kv/%2e%2E")]
    [InlineData("./x", "/v1/kv/%2E/x")]
    public async Task A_key_with_a_dot_segment_is_written_read_counted_and_deleted_by_its_path(string key, string path)
    {
        // A bare socket: HttpClient removes dot segments before it sends.
        var put = await RawHttp.RequestAsync(_server.BaseAddress, "PUT", path, """{"value":"dots"}""", Timeout);
        put.Status.Should().Be(201, put.Body);
        put.Json.GetProperty("key").GetString().Should().Be(key);
        var get = await RawHttp.RequestAsync(_server.BaseAddress, "GET", path, "", Timeout);
        get.Status.Should().Be(200, get.Body);
        get.Json.GetProperty("value").GetString().Should().Be("dots");
        var incr = await RawHttp.RequestAsync(_server.BaseAddress, "POST", path + "/expire", """{"ttl_seconds":600}""", Timeout);
        incr.Status.Should().Be(200, incr.Body);
        var delete = await RawHttp.RequestAsync(_server.BaseAddress, "DELETE", path, "", Timeout);
        delete.Status.Should().Be(204, delete.Body);
        (await RawHttp.RequestAsync(_server.BaseAddress, "GET", path, "", Timeout)).Status.Should().Be(404);
    }

    /// <summary>
    /// A chunk size past 64 bits made Kestrel throw a plain IOException ("Bad chunk size data.") from the body read,
    /// which every route that reads a body answered 500 and logged with its stack (a probe, session 46); a chunk size
    /// that is not hex was already a 400.
    /// </summary>
    [Theory]
    [InlineData("POST", "/v1/memories", "FFFFFFFFFFFFFFFF")]
    [InlineData("PUT", "/v1/kv/chunky", "10000000000000000000")]
    [InlineData("POST", "/v1/search", "FFFFFFFFFFFFFFFFF")]
    [InlineData("POST", "/v2/memories/", "FFFFFFFFFFFFFFFF")]
    [InlineData("POST", "/mcp", "FFFFFFFFFFFFFFFF")]
    [InlineData("POST", "/v1/memories", "zz")]
    public async Task A_chunk_size_the_server_cannot_read_is_a_bad_request(string method, string path, string chunkSize)
    {
        var answer = await RawHttp.RawAsync(_server.BaseAddress, method, path, "Transfer-Encoding: chunked\r\n", $"{chunkSize}\r\nabc\r\n0\r\n\r\n", Timeout);
        answer.Status.Should().Be(400, answer.Body);
        answer.ContentType.Should().StartWith("application/problem+json");
        answer.Json.GetProperty("detail").GetString().Should().Contain("chunk size");
        (await _server.Client.GetAsync("/v1/kv/chunky")).StatusCode.Should().Be(HttpStatusCode.NotFound, "nothing was written");
    }

    [Fact]
    public async Task A_dot_key_from_an_mset_is_reachable_by_its_encoded_path()
    {
        (await _server.SendJsonAsync("POST", "/v1/kv/mset", """{"items":[{"key":"..","value":1},{"key":"q/.","value":2}]}""")).StatusCode
            .Should().Be(HttpStatusCode.OK);
        (await RawHttp.RequestAsync(_server.BaseAddress, "GET", "/v1/kv/..", "", Timeout)).Json.GetProperty("value").GetInt32().Should().Be(1);
        // encodeURIComponent("q/.") leaves no dot segment; the raw form does.
        (await _server.Client.GetAsync("/v1/kv/q%2F.")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await RawHttp.RequestAsync(_server.BaseAddress, "GET", "/v1/kv/q/.", "", Timeout)).Json.GetProperty("value").GetInt32().Should().Be(2);
    }

    [Fact]
    public async Task Dot_segments_elsewhere_still_resolve_as_before()
    {
        // Outside the name prefixes Kestrel's normalised path routes, as before: /v1/memories/../kv is the key listing.
        var listing = await RawHttp.RequestAsync(_server.BaseAddress, "GET", "/v1/memories/../kv", "", Timeout);
        listing.Status.Should().Be(200, listing.Body);
        listing.Json.TryGetProperty("items", out _).Should().BeTrue(listing.Body);
    }

    [Theory]
    [InlineData("slash/name", "slash%2Fname")]
    [InlineData("100%", "100%25")]
    [InlineData("a/b/../c", "a%2Fb%2F..%2Fc")]
    [InlineData("..", "..")]
    [InlineData("..", "%2E%2E")]
    public async Task An_entity_name_is_read_from_the_path_as_sent(string name, string encoded)
    {
        var create = await _server.SendJsonAsync("POST", "/v1/graph/entities",
            $$"""{"entities":[{"name":{{System.Text.Json.JsonSerializer.Serialize(name)}},"entity_type":"thing","observations":["seen"]}]}""");
        create.StatusCode.Should().Be(HttpStatusCode.OK, await create.Content.ReadAsStringAsync());
        foreach (var route in new[] { "neighbors", "history", "memories" })
        {
            var answer = await RawHttp.RequestAsync(_server.BaseAddress, "GET", $"/v1/graph/entities/{encoded}/{route}", "", Timeout);
            answer.Status.Should().Be(200, $"{route}: {answer.Body}");
        }
        var neighbors = await RawHttp.RequestAsync(_server.BaseAddress, "GET", $"/v1/graph/entities/{encoded}/neighbors", "", Timeout);
        neighbors.Json.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Should().Contain(name);
    }

    [Fact]
    public async Task An_entity_path_with_a_bad_escape_is_a_400_naming_name()
    {
        var answer = await RawHttp.RequestAsync(_server.BaseAddress, "GET", "/v1/graph/entities/a%zz/neighbors", "", Timeout);
        answer.Status.Should().Be(400, answer.Body);
        answer.Json.GetProperty("field").GetString().Should().Be("name");
    }

    [Theory]
    [InlineData("/v1/kv?cursor=garbage")]
    [InlineData("/v1/kv?cursor=%25%25")]
    [InlineData("/v1/kv?pattern=b*&cursor=YXBwbGU")]   // "apple": a cursor of another pattern
    [InlineData("/v1/kv?cursor=YXBwbGU=")]              // padded: not as this server writes it
    public async Task A_listing_cursor_this_server_did_not_return_is_a_400(string path)
    {
        await SeedKeysAsync();
        await (await _server.Client.GetAsync(path)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "cursor");
    }

    [Fact]
    public async Task A_cleanup_with_a_foreign_cursor_is_refused_and_deletes_nothing()
    {
        await SeedKeysAsync();
        await (await _server.SendJsonAsync("POST", "/v1/kv/cleanup", """{"pattern":"*","cursor":"garbage"}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "cursor");
        (await (await _server.Client.GetAsync("/v1/kv")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(3);
    }

    [Fact]
    public async Task A_listing_pages_through_every_key_with_the_cursors_it_returns()
    {
        await SeedKeysAsync();
        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await (await _server.Client.GetAsync("/v1/kv?limit=1" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)))).JsonAsync();
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        seen.Should().Equal("apple", "banana", "cherry");
    }

    private async Task SeedKeysAsync()
    {
        foreach (var key in new[] { "apple", "banana", "cherry" })
        {
            (await _server.SendJsonAsync("PUT", "/v1/kv/" + key, """{"value":1}""")).IsSuccessStatusCode.Should().BeTrue();
        }
    }

    [Fact]
    public async Task Superseded_by_must_name_another_visible_memory()
    {
        var id = await CreateMemoryAsync("the old fact");
        var successor = await CreateMemoryAsync("the new fact");
        await (await _server.SendJsonAsync("PATCH", $"/v1/memories/{id}", """{"superseded_by":"x"}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "superseded_by");
        await (await _server.SendJsonAsync("PATCH", $"/v1/memories/{id}", $$"""{"superseded_by":"{{id}}"}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "superseded_by");
        await (await _server.SendJsonAsync("PATCH", $"/v1/memories/{id}", """{"superseded_by":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "superseded_by");
        // Refused changes left it listed.
        (await (await _server.Client.GetAsync("/v1/memories?user_id=probe")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(2);

        var linked = await _server.SendJsonAsync("PATCH", $"/v1/memories/{id}", $$"""{"superseded_by":"{{successor}}"}""");
        linked.StatusCode.Should().Be(HttpStatusCode.OK, await linked.Content.ReadAsStringAsync());
        (await (await _server.Client.GetAsync($"/v1/memories/{id}")).JsonAsync()).GetProperty("superseded_by").GetString().Should().Be(successor);
        var cleared = await _server.SendJsonAsync("PATCH", $"/v1/memories/{id}", """{"superseded_by":null}""");
        cleared.StatusCode.Should().Be(HttpStatusCode.OK, await cleared.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Superseded_by_may_not_name_a_memory_outside_the_callers_scope()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin));
        var alice = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Write, new KeyScope("alice", null)));
        var bobs = await IdOfAsync(await admin.PostAsync("/v1/memories", Json("""{"content":"bob's fact","user_id":"bob"}""")));
        var alices = await IdOfAsync(await alice.PostAsync("/v1/memories", Json("""{"content":"alice's fact","user_id":"alice"}""")));
        await (await alice.PatchAsync($"/v1/memories/{alices}", Json($$"""{"superseded_by":"{{bobs}}"}""")))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "superseded_by");
    }

    [Fact]
    public async Task A_nested_field_of_the_wrong_type_is_named_by_its_path_and_its_type()
    {
        var body = await (await _server.SendJsonAsync("POST", "/v1/search", """{"query":"x","filters":{"type":"fact"}}"""))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "filters.type");
        body.GetProperty("detail").GetString().Should().Be("filters.type must be an array of strings");
        var top = await (await _server.SendJsonAsync("POST", "/v1/memories", """{"content":5}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "content");
        top.GetProperty("detail").GetString().Should().Be("content must be a string");
    }

    [Theory]
    [InlineData("tags=,,")]
    [InlineData("type=%20,%20")]
    [InlineData("tier=,")]
    public async Task A_list_filter_that_names_nothing_is_a_400(string query)
    {
        await CreateMemoryAsync("something tagged");
        var field = query[..query.IndexOf('=')];
        await (await _server.Client.GetAsync("/v1/memories?" + query)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }

    [Theory]
    [InlineData("br")]
    [InlineData("gzip")]
    [InlineData("identity, gzip")]
    public async Task A_compressed_body_is_a_415_saying_what_is_taken(string coding)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/memories") { Content = Json("""{"content":"compressed?"}""") };
        foreach (var part in coding.Split(", "))
        {
            request.Content.Headers.ContentEncoding.Add(part);
        }
        var response = await _server.Client.SendAsync(request);
        var body = await response.ShouldBeProblemAsync(HttpStatusCode.UnsupportedMediaType);
        body.GetProperty("detail").GetString().Should().Contain("Content-Encoding");
        response.Headers.TryGetValues("Accept-Encoding", out var accepted).Should().BeTrue();
        accepted!.Should().Equal("identity");
        (await (await _server.Client.GetAsync("/v1/memories")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task An_identity_coding_is_taken()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/memories") { Content = Json("""{"content":"plain"}""") };
        request.Content.Headers.ContentEncoding.Add("identity");
        (await _server.Client.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Two_different_keys_in_one_request_are_refused()
    {
        await using var server = await EngramServer.StartAsync();
        var adminKey = await server.CreateKeyAsync("acme", Role.Admin);
        var readKey = await server.CreateKeyAsync("acme", Role.Read);
        using var both = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
        both.Headers.Authorization = new AuthenticationHeaderValue("Bearer", readKey);
        both.Headers.Add("X-API-Key", adminKey);
        var body = await (await server.Client.SendAsync(both)).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        body.GetProperty("detail").GetString().Should().Contain("more than one API key");

        using var same = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
        same.Headers.Authorization = new AuthenticationHeaderValue("Bearer", readKey);
        same.Headers.Add("X-API-Key", readKey);
        (await server.Client.SendAsync(same)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    /// <summary>
    /// An X-Engram-Actor that cannot be a name (too long, or with characters that hide or reorder text: U+202E turned
    /// "http:eve" into what reads as another name in history) was dropped silently or stored as given (session 46's
    /// probe). It is a 400 naming the header, and nothing is written.
    /// </summary>
    [Theory]
    [InlineData("5000")]
    [InlineData("\u202Eevil")]
    [InlineData("a\u200Bb")]
    [InlineData("tab\there")]
    [InlineData("nbsp\u00A0x")]
    [InlineData("")]
    public async Task An_actor_header_that_cannot_be_a_name_is_a_400_and_writes_nothing(string actor)
    {
        actor = actor == "5000" ? new string('a', 5000) : System.Text.RegularExpressions.Regex.Unescape(actor);
        const string body = """{"content":"who wrote this"}""";
        var answer = await RawHttp.RawAsync(_server.BaseAddress, "POST", "/v1/memories",
            $"X-Engram-Actor: {actor}\r\nContent-Length: {body.Length}\r\n", body, Timeout);
        answer.Status.Should().Be(400, answer.Body);
        answer.Json.GetProperty("detail").GetString().Should().Contain("X-Engram-Actor");
        var list = await (await _server.Client.GetAsync("/v1/memories")).JsonAsync();
        list.GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task An_actor_header_with_spaces_and_letters_beyond_ASCII_is_the_history_actor()
    {
        const string body = """{"content":"who wrote this"}""";
        var answer = await RawHttp.RawAsync(_server.BaseAddress, "POST", "/v1/memories",
            $"X-Engram-Actor: Zoë planner 🤖\r\nContent-Length: {body.Length}\r\n", body, Timeout);
        answer.Status.Should().Be(201, answer.Body);
        var id = answer.Json.GetProperty("id").GetString();
        var history = await (await _server.Client.GetAsync($"/v1/memories/{id}/history")).JsonAsync();
        history.GetProperty("items")[0].GetProperty("actor").GetString().Should().Be("http:Zoë planner 🤖");
    }

    [Theory]
    [InlineData("DELETE", "/v1/entities/user/%ff/")] // mem0: deleted the memories of the user literally called "%ff"
    [InlineData("DELETE", "/v1/entities/user/50%/")]
    [InlineData("GET", "/v1/memories/%c3%28")]
    [InlineData("GET", "/v1/memories/%zz")]
    public async Task A_path_that_is_not_UTF8_once_percent_decoded_is_a_400_naming_the_path(string method, string path)
    {
        const string literal = """{"content":"belongs to the user called %ff","user_id":"%ff"}""";
        (await _server.Client.PostAsync("/v1/memories", Json(literal))).StatusCode.Should().Be(HttpStatusCode.Created);
        var answer = await RawHttp.RawAsync(_server.BaseAddress, method, path, "", "", Timeout);
        answer.Status.Should().Be(400, answer.Body);
        answer.Json.GetProperty("field").GetString().Should().Be("path");
        var left = await (await _server.Client.GetAsync("/v1/memories?user_id=%25ff")).JsonAsync();
        left.GetProperty("items").GetArrayLength().Should().Be(1);

        // The literal name, sent as %25ff, is that user.
        var delete = await RawHttp.RawAsync(_server.BaseAddress, "DELETE", "/v1/entities/user/%25ff/", "", "", Timeout);
        delete.Status.Should().Be(200, delete.Body);
        left = await (await _server.Client.GetAsync("/v1/memories?user_id=%25ff")).JsonAsync();
        left.GetProperty("items").GetArrayLength().Should().Be(0);
    }

    private async Task<string> CreateMemoryAsync(string content) =>
        await IdOfAsync(await _server.SendJsonAsync("POST", "/v1/memories", $$"""{"content":"{{content}}","user_id":"probe","tags":["t"]}"""));

    private static async Task<string> IdOfAsync(HttpResponseMessage response)
    {
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.JsonAsync()).GetProperty("id").GetString()!;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
