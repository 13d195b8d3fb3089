using System.Net;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Postgres;

/// <summary>
/// What a probe of the PostgreSQL store found in session 43 (500s where SQLite answered), on both stores alike: a batch
/// with a NUL in one item, numeric metadata filters over a stored number beyond a double, an observation of 4 KB, and
/// key patterns with reversed or chained ranges; and, from session 44, metadata key paths that PostgreSQL read into arrays, an import's stop, and key-value values holding NUL.
/// </summary>
public sealed class StoreEdgeValueTests
{
    public static TheoryData<Backend> Backends => new() { Backend.Sqlite, Backend.Postgres };

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task A_batch_reports_an_item_with_a_NUL_in_its_slot_and_stores_the_others(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        var response = await server.PostJsonAsync("/v1/memories/batch",
            """{"items":[{"content":"batch ok 1"},{"content":"batch \u0000 bad"},{"content":"batch ok 2","metadata":{"x":"\u0000"}},{"content":"batch ok 3","metadata":{"n":1e400}}]}""");
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var results = (await response.JsonAsync()).GetProperty("results").EnumerateArray().ToList();
        results.Select(r => r.GetProperty("status").GetString()).Should().Equal("created", "error", "error", "error");
        results[1].GetProperty("error").ToString().Should().Contain("NUL character");
        results[3].GetProperty("error").ToString().Should().Contain("beyond what a double holds");
        var listed = await server.Client.GetAsync("/v1/memories");
        (await listed.JsonAsync()).GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal("batch ok 1");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Numeric_metadata_filters_answer_over_a_number_stored_beyond_a_double(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        // Written below the service, as a server before the rule took them: PostgreSQL's jsonb holds them exactly.
        var store = server.Services.GetRequiredService<IMemoryStore>();
        foreach (var (content, metadata) in new[] { ("tiny", """{"n":1e-400}"""), ("huge", """{"n":1e400}""") })
        {
            var memory = TestMemories.New(content) with { Metadata = JsonDocument.Parse(metadata).RootElement.Clone() };
            await store.CreateAsync(Caller.Default("test"), memory, DuplicatePolicy.Allow);
        }
        await server.CreateAsync(new { content = "five", metadata = new { n = 5 } });
        await server.CreateAsync(new { content = "big", metadata = new { n = 9007199254740993 } });

        // An integer past 2^53 is compared exactly on both stores: its neighbour, which a double cannot tell from it, is not it.
        foreach (var (filter, expected) in new[] { ("5", new[] { "five" }), ("5.0", ["five"]), ("9007199254740993", ["big"]), ("9007199254740992", []) })
        {
            var list = await server.Client.GetAsync($"/v1/memories?metadata.n={filter}");
            list.StatusCode.Should().Be(HttpStatusCode.OK, await list.Content.ReadAsStringAsync());
            (await list.JsonAsync()).GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal(expected, filter);
        }
        var search = await server.PostJsonAsync("/v1/search", """{"query":"five","filters":{"metadata":{"n":"5"}}}""");
        search.StatusCode.Should().Be(HttpStatusCode.OK, await search.Content.ReadAsStringAsync());
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task A_metadata_key_path_steps_into_objects_and_never_into_arrays(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        await server.CreateAsync(new { content = "array", metadata = new { tags = new object[] { "red", 5, true }, deep = new[] { new { x = "y" } } } });
        await server.CreateAsync(new { content = "object", metadata = new Dictionary<string, object> { ["tags"] = new Dictionary<string, object> { ["0"] = "red", ["1"] = 5, ["2"] = true }, ["deep"] = new Dictionary<string, object> { ["0"] = new { x = "y" } } } });

        // Dots name nested object keys on both stores; PostgreSQL's #> read "tags.0" as the first element of an array too.
        foreach (var (filter, expected) in new[] { ("tags.0=red", new[] { "object" }), ("tags.1=5", ["object"]), ("tags.2=true", ["object"]), ("deep.0.x=y", ["object"]), ("tags=red", []) })
        {
            var list = await server.Client.GetAsync($"/v1/memories?metadata.{filter}");
            list.StatusCode.Should().Be(HttpStatusCode.OK, await list.Content.ReadAsStringAsync());
            (await list.JsonAsync()).GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Equal(expected, filter);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task An_import_that_stops_at_a_refused_record_writes_nothing_after_it_in_its_batch(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        var transfer = (IStoreTransfer)server.Services.GetRequiredService<IMemoryStore>();
        static JsonElement Kv(string key, string value) => JsonDocument.Parse(
            $$"""{"kind":"kv","tenant":"default","key":"{{key}}","value":{{value}},"expires_at":null,"version":1,"created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","history":[]}""").RootElement.Clone();
        JsonElement[] records = [Kv("before", "1"), Kv("refused", "{\"n\":1e400}"), Kv("after", "3")];

        foreach (var (stop, expected) in new[] { (true, new[] { ImportOutcome.Imported, ImportOutcome.Failed, ImportOutcome.NotReached }), (false, [ImportOutcome.Skipped, ImportOutcome.Failed, ImportOutcome.Imported]) })
        {
            var results = await transfer.ImportAsync(records, new ImportRules(0, ImportValidation.Default, StopAtRefusal: stop));
            results.Select(r => r.Outcome).Should().Equal(expected, $"StopAtRefusal: {stop}");
            results[1].Error!.Message.Should().Contain("beyond what a double holds");
            (await server.Client.GetAsync("/v1/kv/after")).StatusCode.Should().Be(stop ? HttpStatusCode.NotFound : HttpStatusCode.OK);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task A_key_value_value_holding_NUL_is_written_read_and_imported(Backend backend)
    {
        // RESP writes bytes, NUL among them, and an export carries them as \u0000: the import refused them (session 44).
        await using var server = await EngramServer.StartAsync(backend);
        var put = await server.SendJsonAsync("PUT", "/v1/kv/bin", """{"value":{"bytes":"a\u0000b"}}""");
        put.IsSuccessStatusCode.Should().BeTrue(await put.Content.ReadAsStringAsync());
        var transfer = (IStoreTransfer)server.Services.GetRequiredService<IMemoryStore>();
        var record = JsonDocument.Parse("""{"kind":"kv","tenant":"default","key":"imported","value":"x\u0000y","expires_at":null,"version":1,""" +
            """ "created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","history":[]}""").RootElement.Clone();
        (await transfer.ImportAsync([record], new ImportRules(0, ImportValidation.Default))).Single().Outcome.Should().Be(ImportOutcome.Imported);

        (await (await server.Client.GetAsync("/v1/kv/bin")).JsonAsync()).GetProperty("value").GetProperty("bytes").GetString().Should().Be("a\0b");
        (await (await server.Client.GetAsync("/v1/kv/imported")).JsonAsync()).GetProperty("value").GetString().Should().Be("x\0y");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task An_observation_as_long_as_the_limit_is_stored_once(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        var random = new Random(3);
        var text = new string([.. Enumerable.Range(0, 4096).Select(_ => (char)random.Next('a', 'z' + 1))]);
        foreach (var attempt in new[] { 1, 2 })
        {
            var body = JsonSerializer.Serialize(new { entities = new[] { new { name = "Long", entity_type = "thing", observations = new[] { text } } } });
            var response = await server.PostJsonAsync("/v1/graph/entities", body);
            response.StatusCode.Should().Be(HttpStatusCode.OK, $"attempt {attempt}: {await response.Content.ReadAsStringAsync()}");
        }
        var added = await server.PostJsonAsync("/v1/graph/observations", JsonSerializer.Serialize(new { observations = new[] { new { entity_name = "Long", contents = new[] { text, text[..4000] } } } }));
        added.StatusCode.Should().Be(HttpStatusCode.OK, await added.Content.ReadAsStringAsync());
        var graph = await server.Client.GetAsync("/v1/graph");
        var entity = (await graph.JsonAsync()).GetProperty("entities").EnumerateArray().Single(e => e.GetProperty("name").GetString() == "Long");
        entity.GetProperty("observations").EnumerateArray().Select(o => o.ValueKind == JsonValueKind.String ? o.GetString() : o.GetProperty("content").GetString())
            .Should().Equal(text, text[..4000]);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Key_patterns_with_reversed_or_chained_ranges_list_as_Redis_reads_them(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend);
        foreach (var key in new[] { "pa", "pb", "pd", "p-", "p^", "pz" })
        {
            (await server.SendJsonAsync("PUT", $"/v1/kv/{key}", """{"value":1}""")).StatusCode.Should().Be(HttpStatusCode.Created);
        }
        foreach (var (pattern, expected) in new[]
        {
            ("p[z-a]", new[] { "pa", "pb", "pd", "pz" }),
            ("p[a-c-e]", new[] { "p-", "pa", "pb" }),
            ("p[\\^]", new[] { "p^" }),
            ("p[a\\-z]", new[] { "p-", "pa", "pz" }),
        })
        {
            var list = await server.Client.GetAsync($"/v1/kv?pattern={Uri.EscapeDataString(pattern)}");
            list.StatusCode.Should().Be(HttpStatusCode.OK, await list.Content.ReadAsStringAsync());
            (await list.JsonAsync()).GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()).Should().BeEquivalentTo(expected, pattern);
        }
    }
}
