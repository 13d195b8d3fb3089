using System.Net;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Http;

public class MemoriesCreateTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Create_ReturnsCreatedMemoryWithEveryFieldAndSeq()
    {
        var response = await _server.PostJsonAsync("/v1/memories", """
            {"content":"User prefers dark mode","type":"preference","tier":"short_term","importance":0.8,"valence":0.5,
             "tags":["ui","settings"],"metadata":{"project":"engram"},"user_id":"u1","agent_id":"a1","session_id":"s1",
             "namespace":"ns","source":"chat","valid_from":"2026-01-01T00:00:00Z"}
            """);
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        var body = await response.JsonAsync();
        var id = body.GetProperty("id").GetString()!;
        id.Should().HaveLength(26);
        response.Headers.Location!.ToString().Should().Be($"/v1/memories/{id}");
        response.Headers.ETag!.Tag.Should().Be("\"1\"");
        body.GetProperty("seq").GetInt64().Should().BePositive();
        body.GetProperty("duplicate").GetBoolean().Should().BeFalse();
        body.GetProperty("content").GetString().Should().Be("User prefers dark mode");
        body.GetProperty("content_hash").GetString().Should().MatchRegex("^[0-9a-f]{64}$");
        body.GetProperty("type").GetString().Should().Be("preference");
        body.GetProperty("tier").GetString().Should().Be("short_term");
        body.GetProperty("importance").GetDouble().Should().Be(0.8);
        body.GetProperty("valence").GetDouble().Should().Be(0.5);
        body.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("ui", "settings");
        body.GetProperty("metadata").GetProperty("project").GetString().Should().Be("engram");
        body.GetProperty("user_id").GetString().Should().Be("u1");
        body.GetProperty("agent_id").GetString().Should().Be("a1");
        body.GetProperty("session_id").GetString().Should().Be("s1");
        body.GetProperty("namespace").GetString().Should().Be("ns");
        body.GetProperty("source").GetString().Should().Be("chat");
        body.GetProperty("valid_from").GetString().Should().Be("2026-01-01T00:00:00.000Z");
        body.GetProperty("valid_to").ValueKind.Should().Be(JsonValueKind.Null);
        body.GetProperty("expires_at").ValueKind.Should().Be(JsonValueKind.Null);
        body.GetProperty("last_accessed_at").ValueKind.Should().Be(JsonValueKind.Null);
        body.GetProperty("access_count").GetInt64().Should().Be(0);
        body.GetProperty("version").GetInt64().Should().Be(1);
        body.GetProperty("created_at").GetString().Should().EndWith("Z");

        var fetched = await (await _server.Client.GetAsync($"/v1/memories/{id}")).JsonAsync();
        fetched.GetProperty("content").GetString().Should().Be("User prefers dark mode");
        fetched.TryGetProperty("seq", out _).Should().BeFalse("seq belongs to write responses");
    }

    [Fact]
    public async Task Create_AppliesDefaults()
    {
        var body = await _server.CreateAsync(new { content = "plain" });
        body.GetProperty("type").GetString().Should().Be("fact");
        body.GetProperty("tier").GetString().Should().Be("long_term");
        body.GetProperty("importance").GetDouble().Should().Be(0.5);
        body.GetProperty("tags").GetArrayLength().Should().Be(0);
        body.GetProperty("metadata").EnumerateObject().Should().BeEmpty();
        body.GetProperty("user_id").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task Create_SeqGrowsWithEveryWrite()
    {
        var first = (await _server.CreateAsync(new { content = "one" })).GetProperty("seq").GetInt64();
        var second = (await _server.CreateAsync(new { content = "two" })).GetProperty("seq").GetInt64();
        second.Should().BeGreaterThan(first);
    }

    [Fact]
    public async Task Duplicate_ByDefaultReturnsExistingWith200()
    {
        var original = await _server.CreateAsync(new { content = "Café  au\tlait\n", user_id = "u1" });
        // Same text after NFC, trimming and collapsing white space: "Cafe\u0301" is the decomposed é.
        var again = await _server.PostJsonAsync("/v1/memories", """{"content":"  Cafe\u0301 au lait","user_id":"u1"}""");
        again.StatusCode.Should().Be(HttpStatusCode.OK);
        var body = await again.JsonAsync();
        body.GetProperty("duplicate").GetBoolean().Should().BeTrue();
        body.GetProperty("id").GetString().Should().Be(original.GetProperty("id").GetString());
        body.GetProperty("content_hash").GetString().Should().Be(original.GetProperty("content_hash").GetString());
    }

    [Fact]
    public async Task Duplicate_IsPerScope()
    {
        await _server.CreateAsync(new { content = "same words", user_id = "u1" });
        await _server.CreateAsync(new { content = "same words", user_id = "u2" });
        await _server.CreateAsync(new { content = "same words", user_id = "u1", session_id = "s" });
        await _server.CreateAsync(new { content = "same words" });
    }

    [Fact]
    public async Task Duplicate_RejectGives409NamingExistingId()
    {
        var original = await _server.CreateAsync(new { content = "unique fact" });
        var response = await _server.PostJsonAsync("/v1/memories?on_duplicate=reject", """{"content":"unique fact"}""");
        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.Conflict);
        var id = original.GetProperty("id").GetString()!;
        problem.GetProperty("existing_id").GetString().Should().Be(id);
        problem.GetProperty("detail").GetString().Should().Contain(id);
    }

    [Fact]
    public async Task Duplicate_AllowStoresASecondCopy()
    {
        var original = await _server.CreateAsync(new { content = "twice" });
        var response = await _server.PostJsonAsync("/v1/memories?on_duplicate=allow", """{"content":"twice"}""");
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        (await response.JsonAsync()).GetProperty("id").GetString().Should().NotBe(original.GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("""{"type":"fact"}""", "content")]
    [InlineData("""{"content":""}""", "content")]
    [InlineData("""{"content":"   \n\t "}""", "content")]
    [InlineData("""{"content":"x","importance":1.5}""", "importance")]
    [InlineData("""{"content":"x","importance":-0.1}""", "importance")]
    [InlineData("""{"content":"x","valence":-1.01}""", "valence")]
    [InlineData("""{"content":"x","valence":2}""", "valence")]
    [InlineData("""{"content":"x","type":"Has Spaces"}""", "type")]
    [InlineData("""{"content":"x","type":"UPPER"}""", "type")]
    [InlineData("""{"content":"x","tier":"forever"}""", "tier")]
    [InlineData("""{"content":"x","metadata":[1,2]}""", "metadata")]
    [InlineData("""{"content":"x","metadata":"text"}""", "metadata")]
    [InlineData("""{"content":"x","tags":[""]}""", "tags")]
    [InlineData("""{"content":"x","tags":"notalist"}""", "tags")]
    [InlineData("""{"content":"x","user_id":""}""", "user_id")]
    [InlineData("""{"content":"x","ttl_seconds":0}""", "ttl_seconds")]
    [InlineData("""{"content":"x","ttl_seconds":60,"expires_at":"2999-01-01T00:00:00Z"}""", "ttl_seconds")]
    [InlineData("""{"content":"x","expires_at":"2001-01-01T00:00:00Z"}""", "expires_at")]
    [InlineData("""{"content":"x","created_at":"not a date"}""", "created_at")]
    [InlineData("""{"content":"x","created_at":"2999-01-01T00:00:00Z"}""", "created_at")]
    [InlineData("""{"content":"x","valid_from":"2026-02-01T00:00:00Z","valid_to":"2026-01-01T00:00:00Z"}""", "valid_to")]
    [InlineData("""{"content":"x","surprise":true}""", "surprise")]
    [InlineData("""{"content":42}""", "content")]
    public async Task Create_InvalidInput_Gives400NamingTheField(string json, string field)
    {
        var response = await _server.PostJsonAsync("/v1/memories", json);
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }

    [Theory]
    [InlineData("{\"content\":\"x\",")]
    [InlineData("not json at all")]
    [InlineData("[1,2,3]")]
    [InlineData("null")]
    [InlineData("")]
    [InlineData("{\"content\":\"x\"} trailing")]
    [InlineData("{\"content\":\"x\"}{\"content\":\"y\"}")]
    public async Task Create_MalformedBody_Gives400NotA500(string json)
    {
        var response = await _server.PostJsonAsync("/v1/memories", json);
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Create_LargeBodies_ThatArriveInManyPieces_Parse()
    {
        // ~30 KB of content and a 100 KB body (mostly whitespace) both span many of Kestrel's buffers.
        var content = string.Concat(Enumerable.Range(0, 4000).Select(i => $"word{i % 97:D3} "))[..30_000];
        var whole = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content }));
        whole.StatusCode.Should().Be(HttpStatusCode.Created);
        (await whole.JsonAsync()).GetProperty("content").GetString().Should().Be(content);

        var streamed = await _server.PostJsonAsync("/v1/memories", "{\"content\":\"padded\"" + new string(' ', 100_000) + "}");
        streamed.StatusCode.Should().Be(HttpStatusCode.Created);
        (await streamed.JsonAsync()).GetProperty("content").GetString().Should().Be("padded");
    }

    [Fact]
    public async Task Create_NonJsonContentType_Gives415()
    {
        var response = await _server.Client.PostAsync("/v1/memories", new StringContent("content=x", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));
        await response.ShouldBeProblemAsync(HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task Create_UnknownQueryParameter_Gives400()
    {
        var response = await _server.PostJsonAsync("/v1/memories?on_dupe=allow", """{"content":"x"}""");
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "on_dupe");
        response = await _server.PostJsonAsync("/v1/memories?on_duplicate=sometimes", """{"content":"x"}""");
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "on_duplicate");
    }

    [Fact]
    public async Task Limits_ContentAtLimitIsAcceptedAndOneMoreIsRefused()
    {
        var atLimit = new string('a', 32_768);
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = atLimit }))).StatusCode.Should().Be(HttpStatusCode.Created);
        var response = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = atLimit + "b" }));
        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "content")).GetProperty("detail").GetString().Should().Contain("32768");
    }

    [Fact]
    public async Task Limits_CountCharactersAsCodePoints_SoAnEmojiIsOne()
    {
        // 32,768 emoji are 65,536 UTF-16 units; sent escaped as Python's json.dumps sends them, 393,216 bytes of JSON.
        var emoji = string.Concat(Enumerable.Repeat("\U0001F600", 32_768));
        var escaped = JsonSerializer.Serialize(new { content = emoji }); // System.Text.Json escapes non-ASCII as \uXXXX
        escaped.Length.Should().BeGreaterThan(32_768 * 12);
        (await _server.PostJsonAsync("/v1/memories", escaped)).StatusCode.Should().Be(HttpStatusCode.Created);
        var response = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = emoji + "b" }));
        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "content")).GetProperty("detail").GetString()
            .Should().Be("content is longer than 32768 characters, the most any field takes"); // 12 bytes of escapes for each, and one more
        // Unescaped (UTF-8), the same content is counted by the validator.
        var raw = new StringContent($"{{\"content\":\"{emoji}b\"}}", System.Text.Encoding.UTF8, "application/json");
        (await (await _server.Client.PostAsync("/v1/memories", raw)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "content")).GetProperty("detail").GetString()
            .Should().Be("content has 32769 characters; the limit is 32768");

        // A tag of 64 emoji fits; one of 65 is refused, and the message's excerpt does not cut an emoji in two.
        var tag = string.Concat(Enumerable.Repeat("\U0001F600", 64));
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "emoji tag", tags = new[] { tag } }))).StatusCode
            .Should().Be(HttpStatusCode.Created);
        var longTag = "x" + tag;
        var detail = (await (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "long emoji tag", tags = new[] { longTag } })))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tags")).GetProperty("detail").GetString()!;
        detail.Should().Be($"tag '{longTag[..19]}…' has 65 characters; the limit is 64");

        // Scope fields: 256 emoji are 256 characters.
        var user = string.Concat(Enumerable.Repeat("\U0001F600", 256));
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "emoji user", user_id = user }))).StatusCode
            .Should().Be(HttpStatusCode.Created);
        await (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "emoji user", user_id = user + "x" })))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "user_id");
    }

    [Fact]
    public async Task Limits_Tags()
    {
        var sixtyFour = Enumerable.Range(0, 64).Select(i => $"t{i}").ToArray();
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "tags ok", tags = sixtyFour }))).StatusCode.Should().Be(HttpStatusCode.Created);
        var response = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "too many", tags = sixtyFour.Append("t64") }));
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tags");
        response = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "too long", tags = new[] { new string('x', 65) } }));
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tags");
        (await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = "long ok", tags = new[] { new string('x', 64) } }))).StatusCode.Should().Be(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Limits_Metadata16KB()
    {
        // {"k":"…"} is 8 bytes of JSON around the value.
        var fits = JsonSerializer.Serialize(new { content = "meta ok", metadata = new { k = new string('m', 16 * 1024 - 8) } });
        (await _server.PostJsonAsync("/v1/memories", fits)).StatusCode.Should().Be(HttpStatusCode.Created);
        var tooBig = JsonSerializer.Serialize(new { content = "meta big", metadata = new { k = new string('m', 16 * 1024 - 7) } });
        await (await _server.PostJsonAsync("/v1/memories", tooBig)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "metadata");
    }

    [Fact]
    public async Task Limits_AreConfigurable()
    {
        await using var strict = await EngramServer.StartAsync(Backend, configure: o => o.Limits.MaxContentChars = 10);
        (await strict.PostJsonAsync("/v1/memories", """{"content":"0123456789"}""")).StatusCode.Should().Be(HttpStatusCode.Created);
        await (await strict.PostJsonAsync("/v1/memories", """{"content":"0123456789a"}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "content");
    }

    [Fact]
    public async Task Create_TtlSetsExpiry()
    {
        var body = await _server.CreateAsync(new { content = "short lived", ttl_seconds = 3600 });
        var expires = DateTimeOffset.Parse(body.GetProperty("expires_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        var created = DateTimeOffset.Parse(body.GetProperty("updated_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        (expires - created).Should().BeCloseTo(TimeSpan.FromHours(1), TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Create_KeepsBackfilledCreatedAt()
    {
        var body = await _server.CreateAsync(new { content = "from 2023", created_at = "2023-05-08T13:56:00Z" });
        body.GetProperty("created_at").GetString().Should().Be("2023-05-08T13:56:00.000Z");
    }
}
