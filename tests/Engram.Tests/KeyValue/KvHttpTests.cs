using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>The /v1/kv REST API against a real server over a real SQLite file.</summary>
public class KvHttpTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<HttpResponseMessage> PutAsync(string key, string json) =>
        _server.Client.PutAsync("/v1/kv/" + Uri.EscapeDataString(key), new StringContent(json, Encoding.UTF8, "application/json"));

    private Task<HttpResponseMessage> GetAsync(string key) => _server.Client.GetAsync("/v1/kv/" + Uri.EscapeDataString(key));

    [Fact]
    public async Task Put_CreatesThenReplaces_AndGetReturnsTheValueWithTtl()
    {
        var created = await PutAsync("agent:state:1", """{"value":{"step":3,"tags":["a"]},"ttl_seconds":120}""");
        created.StatusCode.Should().Be(HttpStatusCode.Created);
        var body = await created.JsonAsync();
        body.GetProperty("key").GetString().Should().Be("agent:state:1");
        body.GetProperty("created").GetBoolean().Should().BeTrue();

        var replaced = await PutAsync("agent:state:1", """{"value":"done","ttl_seconds":0}""");
        replaced.StatusCode.Should().Be(HttpStatusCode.OK);
        (await replaced.JsonAsync()).GetProperty("version").GetInt64().Should().Be(2);

        var got = await (await GetAsync("agent:state:1")).JsonAsync();
        got.GetProperty("key").GetString().Should().Be("agent:state:1");
        got.GetProperty("value").GetString().Should().Be("done");
        got.GetProperty("ttl_seconds").GetInt64().Should().Be(0);
        got.GetProperty("expires_at").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task DefaultTtl_IsADay_AndEveryJsonKindIsAValue()
    {
        foreach (var (key, value) in new[] { ("n", "null"), ("b", "true"), ("x", "12.5"), ("a", "[1,{\"k\":null}]"), ("s", "\"text\"") })
        {
            (await PutAsync(key, $$"""{"value":{{value}}}""")).StatusCode.Should().Be(HttpStatusCode.Created);
            var got = await (await GetAsync(key)).JsonAsync();
            got.GetProperty("value").GetRawText().Should().Be(value);
            got.GetProperty("ttl_seconds").GetInt64().Should().BeInRange(86_399, 86_400);
        }
    }

    [Fact]
    public async Task KeysWithColonsSlashesSpacesAndPercents_RoundTrip()
    {
        foreach (var key in new[] { "a:b", "with space", "path/to/x", "50%", "x/incr", "mget", "ünï:cödé:✓" })
        {
            (await PutAsync(key, """{"value":1}""")).StatusCode.Should().Be(HttpStatusCode.Created, key);
            (await (await GetAsync(key)).JsonAsync()).GetProperty("key").GetString().Should().Be(key);
        }
        // Unencoded slashes name the same key as %2F.
        (await (await _server.Client.GetAsync("/v1/kv/path/to/x")).JsonAsync()).GetProperty("key").GetString().Should().Be("path/to/x");
        (await _server.PostJsonAsync("/v1/kv/path/to/x/incr", """{"by":2}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await (await GetAsync("path/to/x")).JsonAsync()).GetProperty("value").GetInt64().Should().Be(3);
        (await _server.Client.DeleteAsync("/v1/kv/" + Uri.EscapeDataString("with space"))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        await (await GetAsync("with space")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task NxAndXx_AreConditions()
    {
        await (await PutAsync("k", """{"value":1,"xx":true}""")).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        (await PutAsync("k", """{"value":1,"nx":true}""")).StatusCode.Should().Be(HttpStatusCode.Created);
        await (await PutAsync("k", """{"value":2,"nx":true}""")).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        (await PutAsync("k", """{"value":3,"xx":true}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await (await GetAsync("k")).JsonAsync()).GetProperty("value").GetInt64().Should().Be(3);
        await (await PutAsync("k", """{"value":3,"xx":true,"nx":true}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "nx");
    }

    [Fact]
    public async Task Validation_Answers400WithTheField()
    {
        await (await PutAsync("k", """{"ttl_seconds":5}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "value");
        await (await PutAsync("k", """{"value":1,"ttl_seconds":-1}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "ttl_seconds");
        await (await PutAsync("k", """{"value":1,"bogus":1}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        await (await PutAsync(new string('k', 513), """{"value":1}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "key");
        await (await PutAsync("tab\there", """{"value":1}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "key");
        (await PutAsync(new string('é', 256), """{"value":1}""")).StatusCode.Should().Be(HttpStatusCode.Created); // 512 bytes exactly
        await (await _server.Client.GetAsync("/v1/kv?pattern=[abc")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "pattern");
        await (await _server.Client.GetAsync("/v1/kv?limit=1001")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "limit");
        await (await _server.Client.GetAsync("/v1/kv?cursor=%%%")).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        await (await _server.PostJsonAsync("/v1/kv/mget", """{"keys":[]}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "keys");
        await (await _server.PostJsonAsync("/v1/kv/mset", """{"items":[{"key":"","value":1}]}""")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "items[0].key");
        await (await _server.PostJsonAsync("/v1/kv/k/frobnicate", "{}")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task ValueLimit_IsConfigurable()
    {
        await using var small = await EngramServer.StartAsync(Backend, configure: o => o.KeyValue.MaxValueBytes = 100);
        var ok = "\"" + new string('x', 98) + "\"";
        (await small.Client.PutAsync("/v1/kv/k", new StringContent($$"""{"value":{{ok}}}""", Encoding.UTF8, "application/json"))).StatusCode.Should().Be(HttpStatusCode.Created);
        var tooBig = "\"" + new string('x', 99) + "\"";
        await (await small.Client.PutAsync("/v1/kv/k", new StringContent($$"""{"value":{{tooBig}}}""", Encoding.UTF8, "application/json")))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "value");
    }

    [Fact]
    public async Task DefaultTtl_IsConfigurable_AndZeroMeansNoExpiry()
    {
        await using var persistent = await EngramServer.StartAsync(Backend, configure: o => o.KeyValue.DefaultTtlSeconds = 0);
        (await persistent.Client.PutAsync("/v1/kv/k", new StringContent("""{"value":1}""", Encoding.UTF8, "application/json"))).StatusCode.Should().Be(HttpStatusCode.Created);
        var got = await (await persistent.Client.GetAsync("/v1/kv/k")).JsonAsync();
        got.GetProperty("ttl_seconds").GetInt64().Should().Be(0);
        got.GetProperty("expires_at").ValueKind.Should().Be(JsonValueKind.Null);
        var counter = await (await persistent.PostJsonAsync("/v1/kv/c/incr", "")).JsonAsync();
        counter.GetProperty("value").GetInt64().Should().Be(1);
        (await (await persistent.Client.GetAsync("/v1/kv/c")).JsonAsync()).GetProperty("ttl_seconds").GetInt64().Should().Be(0);
    }

    [Fact]
    public async Task MissingKeys_Answer404()
    {
        await (await GetAsync("nope")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.DeleteAsync("/v1/kv/nope")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.PostJsonAsync("/v1/kv/nope/expire", """{"ttl_seconds":5}""")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.GetAsync("/v1/kv/nope?history=true")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Incr_StartsAtZero_AddsBy_AndRefusesNonIntegersAndOverflow()
    {
        (await (await _server.PostJsonAsync("/v1/kv/c/incr", "")).JsonAsync()).GetProperty("value").GetInt64().Should().Be(1);
        (await (await _server.PostJsonAsync("/v1/kv/c/incr", """{"by":-5}""")).JsonAsync()).GetProperty("value").GetInt64().Should().Be(-4);
        await PutAsync("f", """{"value":1.5}""");
        await (await _server.PostJsonAsync("/v1/kv/f/incr", """{"by":1}""")).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        await PutAsync("s", """{"value":"7"}""");
        await (await _server.PostJsonAsync("/v1/kv/s/incr", """{"by":1}""")).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        await PutAsync("big", $$"""{"value":{{long.MaxValue}}}""");
        await (await _server.PostJsonAsync("/v1/kv/big/incr", """{"by":1}""")).ShouldBeProblemAsync(HttpStatusCode.Conflict);
        (await (await GetAsync("big")).JsonAsync()).GetProperty("value").GetInt64().Should().Be(long.MaxValue);
    }

    [Fact]
    public async Task Incr_UnderConcurrency_LosesNothing()
    {
        const int clients = 16, each = 25;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            for (var i = 0; i < each; i++)
            {
                var response = await _server.PostJsonAsync("/v1/kv/counter/incr", $$"""{"by":{{c + 1}}}""");
                response.StatusCode.Should().Be(HttpStatusCode.OK);
            }
        }));
        var expected = each * Enumerable.Range(1, clients).Sum();
        (await (await GetAsync("counter")).JsonAsync()).GetProperty("value").GetInt64().Should().Be(expected);
    }

    [Fact]
    public async Task Expire_SetsAndRemovesTheTtl()
    {
        await PutAsync("e", """{"value":1,"ttl_seconds":0}""");
        var item = await (await _server.PostJsonAsync("/v1/kv/e/expire", """{"ttl_seconds":30}""")).JsonAsync();
        item.GetProperty("ttl_seconds").GetInt64().Should().BeInRange(29, 30);
        item = await (await _server.PostJsonAsync("/v1/kv/e/expire", """{"ttl_seconds":0}""")).JsonAsync();
        item.GetProperty("ttl_seconds").GetInt64().Should().Be(0);
        item.GetProperty("expires_at").ValueKind.Should().Be(JsonValueKind.Null);
        await (await _server.PostJsonAsync("/v1/kv/e/expire", "{}")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "ttl_seconds");
    }

    [Fact]
    public async Task MgetAndMset_KeepOrder_AndTellMissingFromNull()
    {
        var set = await (await _server.PostJsonAsync("/v1/kv/mset", """{"items":[{"key":"m1","value":1},{"key":"m2","value":null,"ttl_seconds":0}]}""")).JsonAsync();
        set.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("created").GetBoolean()).Should().Equal(true, true);
        var got = await (await _server.PostJsonAsync("/v1/kv/mget", """{"keys":["m2","missing","m1"]}""")).JsonAsync();
        var items = got.GetProperty("items").EnumerateArray().ToList();
        items.Select(i => i.GetProperty("key").GetString()).Should().Equal("m2", "missing", "m1");
        items.Select(i => i.GetProperty("found").GetBoolean()).Should().Equal(true, false, true);
        items[0].GetProperty("value").ValueKind.Should().Be(JsonValueKind.Null);
        items[2].GetProperty("value").GetInt64().Should().Be(1);
    }

    [Fact]
    public async Task Mget_OfManyKeys_IsWholeAndInOrder_AcrossItsChunks_AndABadKeyIsA400()
    {
        var items = string.Join(",", Enumerable.Range(0, 100).Where(i => i % 3 != 0).Select(i => $$"""{"key":"mc:{{i}}","value":"v{{i}}"}"""));
        (await _server.PostJsonAsync("/v1/kv/mset", $$"""{"items":[{{items}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        var keys = string.Join(",", Enumerable.Range(0, 100).Select(i => $"\"mc:{i}\""));
        var got = (await (await _server.PostJsonAsync("/v1/kv/mget", $$"""{"keys":[{{keys}}]}""")).JsonAsync()).GetProperty("items").EnumerateArray().ToList();
        got.Select(i => i.GetProperty("key").GetString()).Should().Equal(Enumerable.Range(0, 100).Select(i => $"mc:{i}"));
        got.Select(i => i.GetProperty("found").GetBoolean()).Should().Equal(Enumerable.Range(0, 100).Select(i => i % 3 != 0));
        got.Where(i => i.GetProperty("found").GetBoolean()).Select(i => i.GetProperty("value").GetString())
            .Should().Equal(Enumerable.Range(0, 100).Where(i => i % 3 != 0).Select(i => $"v{i}"));

        // A bad key far into the list is refused before anything is answered: a whole problem body, not a cut array.
        var bad = string.Join(",", Enumerable.Range(0, 40).Select(i => i == 37 ? "\"\"" : $"\"mc:{i}\""));
        var refused = await _server.PostJsonAsync("/v1/kv/mget", $$"""{"keys":[{{bad}}]}""");
        refused.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await refused.Content.ReadAsStringAsync()).Should().Contain("keys[37]");
    }

    [Fact]
    public async Task History_OfBigValues_EndsPagesEarly_AndTheCursorReachesEveryVersion()
    {
        var big = new string('h', 1_000_000);
        for (var i = 0; i < 20; i++)
        {
            (await PutAsync("hb", $$"""{"value":"{{i:D2}}{{big}}"}""")).IsSuccessStatusCode.Should().BeTrue();
        }
        var seen = new List<string>();
        var pages = new List<int>();
        string? cursor = null;
        do
        {
            var page = await (await _server.Client.GetAsync("/v1/kv/hb?history=true&limit=1000" + (cursor is null ? "" : "&cursor=" + cursor))).JsonAsync();
            var entries = page.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("value").GetString()![..2]).ToList();
            pages.Add(entries.Count);
            seen.InsertRange(0, entries); // each page is older than the one before, in chronological order
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        pages.Should().OnlyContain(n => n <= 9, "a page ends once its values reach 8 MB (8,388,608 characters: nine of these)");
        seen.Should().Equal(Enumerable.Range(0, 20).Select(i => i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task List_PagesWithACursor_AndCleanupDeletesByPattern()
    {
        var items = Enumerable.Range(0, 250).Select(i => $$"""{"key":"job:{{i:D3}}","value":{{i}}}""");
        (await _server.PostJsonAsync("/v1/kv/mset", $$"""{"items":[{{string.Join(',', items)}}]}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        await PutAsync("other", """{"value":0}""");

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var url = "/v1/kv?pattern=job:*&limit=100" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor));
            var page = await (await _server.Client.GetAsync(url)).JsonAsync();
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
            pages++;
        }
        while (cursor is not null);
        pages.Should().Be(3);
        seen.Should().HaveCount(250).And.BeInAscendingOrder(StringComparer.Ordinal).And.OnlyHaveUniqueItems();

        var defaultPage = await (await _server.Client.GetAsync("/v1/kv")).JsonAsync();
        defaultPage.GetProperty("items").GetArrayLength().Should().Be(100);

        var cleaned = await (await _server.PostJsonAsync("/v1/kv/cleanup", """{"pattern":"job:1*"}""")).JsonAsync();
        cleaned.GetProperty("deleted").GetInt32().Should().Be(100);
        cleaned = await (await _server.PostJsonAsync("/v1/kv/cleanup", """{"pattern":"job:*"}""")).JsonAsync();
        cleaned.GetProperty("deleted").GetInt32().Should().Be(150);
        var rest = await (await _server.Client.GetAsync("/v1/kv?pattern=*")).JsonAsync();
        rest.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()).Should().Equal("other");
        await (await _server.PostJsonAsync("/v1/kv/cleanup", "{}")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "pattern");
    }

    [Fact]
    public async Task History_RecordsEveryChangeWithItsActor()
    {
        await PutAsync("h", """{"value":1}""");
        var request = new HttpRequestMessage(HttpMethod.Put, "/v1/kv/h") { Content = new StringContent("""{"value":2}""", Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Engram-Actor", "planner");
        await _server.Client.SendAsync(request);
        await _server.PostJsonAsync("/v1/kv/h/incr", """{"by":1}""");
        await _server.PostJsonAsync("/v1/kv/h/expire", """{"ttl_seconds":0}""");
        await _server.Client.DeleteAsync("/v1/kv/h");

        var history = (await (await _server.Client.GetAsync("/v1/kv/h?history=true")).JsonAsync()).GetProperty("items").EnumerateArray().ToList();
        history.Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "updated", "incremented", "ttl_changed", "deleted");
        history[1].GetProperty("actor").GetString().Should().Be("http:planner");
        history[2].GetProperty("value").GetInt64().Should().Be(3);
        history.Select(h => h.GetProperty("seq").GetInt64()).Should().BeInAscendingOrder();
    }
}
