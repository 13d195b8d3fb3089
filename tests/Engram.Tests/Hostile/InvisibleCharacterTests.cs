using System.Net;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Resp;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Hostile;

/// <summary>
/// Invisible characters (zero-width space U+200B, joiners, word joiner U+2060, the byte order mark U+FEFF, other format
/// characters) in names and identifiers. "Alice" and "Al\u200Bice" looked alike everywhere and were two entities, two
/// users, two keys. Names (graph entities, relation and entity types, memory entities, tags) fold them away, trimmed at the
/// ends like white space, so they merge; identifiers (scope values, key-value keys, API key names) refuse them with a 400
/// naming the field. Joiners that real text needs (emoji sequences, Persian and Indic words) stay.
/// </summary>
public sealed class InvisibleCharacterTests : IAsyncLifetime
{
    private EngramServer _server = null!;
    private int _respPort;

    public async Task InitializeAsync()
    {
        _server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        _respPort = _server.RespPort;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    // A man technologist (ZWJ sequence), a Persian word with ZWNJ ("mikhaham"), Devanagari with ZWJ, Scotland's flag (tag characters).
    private const string Technologist = "\U0001F468\u200D\U0001F4BB";
    private const string Persian = "\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645";
    private const string Devanagari = "\u0915\u094D\u200D\u0937";
    private const string Scotland = "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F";

    [Theory]
    [InlineData("\uFEFFAlice", "Alice")]
    [InlineData("Alice\u200B", "Alice")]
    [InlineData(" \u200B Alice \u2060\uFEFF", "Alice")]
    [InlineData("Al\u200Bice", "Alice")]
    [InlineData("Al\u200Dice", "Alice")]
    [InlineData("Al\u00ADice", "Alice")]
    [InlineData("\u202AAlice\u202C", "Alice")]
    [InlineData("\u3164", "")]
    [InlineData(Technologist, Technologist)]
    [InlineData("dev " + Technologist + "\u200D", "dev " + Technologist)]
    [InlineData(Persian, Persian)]
    [InlineData(Devanagari, Devanagari)]
    [InlineData("Scotland " + Scotland, "Scotland " + Scotland)]
    [InlineData("\u0600\u0661", "\u0600\u0661")] // the Arabic number sign is a visible mark written before digits
    public void Names_fold_invisible_characters_and_keep_the_ones_real_text_needs(string name, string folded) =>
        UnicodeText.FoldInvisible(name).Should().Be(folded);

    [Theory]
    [InlineData("alice", -1)]
    [InlineData("al\u200Bice", 2)]
    [InlineData("\uFEFFalice", 0)]
    [InlineData("alice\u200C", 5)]
    [InlineData("a\u2060b", 1)]
    [InlineData(Persian, -1)]
    [InlineData(Technologist, -1)]
    [InlineData("job:\U000E0041", -1)] // a tag character not at the start: part of a sequence
    [InlineData("ad\u202Enim", 2)] // shows as "admin"
    [InlineData("user\u2067\u05D0\u2069", 4)]
    [InlineData("\u05D0\u200F1", -1)] // a right-to-left mark is text a Hebrew identifier may need
    public void Identifiers_are_searched_for_invisible_characters(string text, int at) =>
        UnicodeText.IndexOfInvisible(text).Should().Be(at);

    [Fact]
    public async Task Graph_names_and_relation_types_that_differ_only_in_invisible_characters_are_one()
    {
        (await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"Alice","entity_type":"person","observations":["plain"]}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        var again = await _server.PostJsonAsync("/v1/graph/entities",
            """{"entities":[{"name":"\ufeffAl\u200bice","entity_type":"person\u200b"},{"name":"Bob","entity_type":"person"}]}""");
        again.StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.PostJsonAsync("/v1/graph/observations", """{"observations":[{"entity_name":"Alice\u2060","contents":["pasted"]}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Alice","to":"Bob","relation_type":"works_at"}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Al\u200bice","to":"\ufeffBob","relation_type":"works\u200b_at"}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);

        var graph = await (await _server.Client.GetAsync("/v1/graph")).JsonAsync();
        graph.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Should().BeEquivalentTo(["Alice", "Bob"]);
        var alice = graph.GetProperty("entities").EnumerateArray().Single(e => e.GetProperty("name").GetString() == "Alice");
        alice.GetProperty("observations").EnumerateArray().Select(o => o.GetString()).Should().Equal("plain", "pasted");
        graph.GetProperty("relations").GetArrayLength().Should().Be(1, "the second relation is the same triple");
    }

    [Fact]
    public async Task A_graph_name_of_invisible_characters_only_is_a_400_naming_the_field()
    {
        var response = await _server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"\u200b\ufeff","entity_type":"person"}]}""");
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "entities[0].name");
    }

    [Fact]
    public async Task Graph_names_keep_joiners_of_emoji_and_of_scripts_that_use_them()
    {
        var body = JsonSerializer.Serialize(new { entities = new[] { new { name = Technologist, entity_type = "emoji" }, new { name = Persian, entity_type = "word" } } });
        (await _server.PostJsonAsync("/v1/graph/entities", body)).StatusCode.Should().Be(HttpStatusCode.OK);
        var graph = await (await _server.Client.GetAsync("/v1/graph")).JsonAsync();
        graph.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Should().BeEquivalentTo([Technologist, Persian]);
    }

    [Theory]
    [InlineData("user_id")]
    [InlineData("agent_id")]
    [InlineData("session_id")]
    [InlineData("namespace")]
    public async Task A_scope_value_with_an_invisible_character_is_a_400_naming_the_field(string field)
    {
        foreach (var value in new[] { "al\u200Bice", "\uFEFFalice", "alice\u2060", "al\u200Dice", "ad\u202Enim" })
        {
            var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["content"] = "x", [field] = value });
            var problem = await (await _server.PostJsonAsync("/v1/memories", body)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
            problem.GetProperty("detail").GetString().Should().Contain("invisible");
        }
        var listing = await (await _server.Client.GetAsync("/v1/memories")).JsonAsync();
        listing.GetProperty("items").GetArrayLength().Should().Be(0, "nothing was stored");
    }

    [Fact]
    public async Task The_mem0_run_id_is_refused_alike()
    {
        var response = await _server.PostJsonAsync("/v1/memories/?infer=false",
            """{"messages":[{"role":"user","content":"x"}],"run_id":"run\u200b1","infer":false}""");
        ((int)response.StatusCode).Should().Be(400, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_scope_value_in_a_script_that_uses_joiners_is_taken()
    {
        var body = JsonSerializer.Serialize(new { content = "x", user_id = Persian });
        var created = await _server.CreateAsync(JsonSerializer.Deserialize<JsonElement>(body));
        created.GetProperty("user_id").GetString().Should().Be(Persian);
    }

    [Fact]
    public async Task Memory_tags_and_entities_fold_invisible_characters()
    {
        var created = await _server.CreateAsync(JsonSerializer.Deserialize<JsonElement>(
            """{"content":"x","tags":["draft","\ufeffdraft","dr\u200baft","urgent\u200b"],"entities":["Alice","Al\u200bice","\ufeffBob"]}"""));
        created.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("draft", "urgent");
        created.GetProperty("entities").EnumerateArray().Select(t => t.GetString()).Should().Equal("Alice", "Bob");
        var filtered = await (await _server.Client.GetAsync("/v1/memories?tags=urgent")).JsonAsync();
        filtered.GetProperty("items").GetArrayLength().Should().Be(1);
    }

    [Theory]
    [InlineData("PUT", "/v1/kv/job:%E2%80%8B1", """{"value":1}""", "key")]
    [InlineData("PUT", "/v1/kv/%EF%BB%BFjob", """{"value":1}""", "key")]
    [InlineData("POST", "/v1/kv/job%E2%81%A0x/incr", """{"by":1}""", "key")]
    [InlineData("POST", "/v1/kv/mset", """{"items":[{"key":"ok","value":1},{"key":"job\u200b","value":1}]}""", "items[1].key")]
    public async Task A_key_value_key_with_an_invisible_character_is_a_400_naming_the_field(string method, string path, string json, string field)
    {
        var problem = await (await _server.SendJsonAsync(method, path, json)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
        problem.GetProperty("detail").GetString().Should().Contain("invisible");
        (await (await _server.Client.GetAsync("/v1/kv")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task A_key_with_an_invisible_character_is_refused_over_RESP_as_over_REST()
    {
        using var client = await RespClient.ConnectAsync(_respPort);
        ((string)(await client.CallAsync("SET", "job:\u200B1", "v"))!).Should().StartWith("-ERR").And.Contain("invisible");
        ((string)(await client.CallAsync("INCR", "\uFEFFcount"))!).Should().StartWith("-ERR").And.Contain("invisible");
        ((string)(await client.CallAsync("MSET", "a", "1", "b\u2060", "2"))!).Should().StartWith("-ERR");
        (await client.CallAsync("SET", "job:" + Persian, "v")).Should().Be("+OK");
        (await client.CallAsync("EXISTS", "job:\u200B1", "\uFEFFcount", "a")).Should().Be(0L);
        var read = await (await _server.Client.GetAsync("/v1/kv/" + Uri.EscapeDataString("job:" + Persian))).JsonAsync();
        read.GetProperty("value").GetString().Should().Be("v", "a key written over RESP reads over REST");
    }

    [Fact]
    public async Task A_key_stored_with_an_invisible_character_before_the_rule_still_reads_and_deletes()
    {
        // Written through the store, as an older server wrote it.
        var store = _server.Services.GetRequiredService<IKeyValueStore>();
        await store.SetKvAsync(Caller.Default("test"), new KvWrite("old\u200Bkey", "\"kept\"", null), WriteDurability.Full);
        await store.SetKvAsync(Caller.Default("test"), new KvWrite("old\u200Bresp", "\"kept\"", null), WriteDurability.Full);

        var read = await _server.Client.GetAsync("/v1/kv/old%E2%80%8Bkey");
        read.StatusCode.Should().Be(HttpStatusCode.OK);
        (await read.JsonAsync()).GetProperty("value").GetString().Should().Be("kept");
        (await _server.PostJsonAsync("/v1/kv/old%E2%80%8Bkey/expire", """{"ttl_seconds":100}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.Client.GetAsync("/v1/kv/old%E2%80%8Bkey?history=true")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _server.Client.DeleteAsync("/v1/kv/old%E2%80%8Bkey")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        using var client = await RespClient.ConnectAsync(_respPort);
        (await client.CallAsync("GET", "old\u200Bresp")).Should().Be("kept");
        (await client.CallAsync("RENAME", "old\u200Bresp", "new:key")).Should().Be("+OK", "renaming it to a visible key is how to repair it");
        (await client.CallAsync("GET", "new:key")).Should().Be("kept");
    }

    [Fact]
    public async Task An_API_key_name_with_an_invisible_character_is_a_400_naming_name()
    {
        var response = await _server.PostJsonAsync("/v1/admin/keys", """{"role":"write","name":"c\u200bi"}""");
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "name");
        var scoped = await _server.PostJsonAsync("/v1/admin/keys", """{"role":"write","name":"ci","scope":{"user_id":"al\u200bice"}}""");
        await scoped.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "user_id");
    }

    [Fact]
    public async Task A_tenant_with_an_invisible_character_is_refused()
    {
        // Tenant names were ASCII letters, digits, '.', '_' and '-' already: an invisible character is refused with them.
        var response = await _server.PostJsonAsync("/v1/admin/keys", """{"role":"write","tenant":"acme\u200b"}""");
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tenant");
    }
}

/// <summary>
/// A store written before invisible characters were refused may hold a scope value or key-value key with one. A copy of
/// the store's own records (a logical backup's verification and restore, a migration) keeps them, so such a store can
/// still be backed up, restored and moved; an import of an export file is held to the write rules and refuses them.
/// </summary>
public sealed class InvisibleCharacterTransferTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly Caller Me = Caller.Default("test");

    private async Task<string> SeededAsync()
    {
        var folder = Path.Combine(_dir.Path, "source");
        await using var store = SqliteMemoryStore.Open(folder);
        // Through the store, as an older server wrote them.
        await store.CreateAsync(Me, TestMemories.New("scoped to a look-alike user") with { UserId = "al\u200Bice" }, DuplicatePolicy.Return);
        await ((IKeyValueStore)store).SetKvAsync(Me, new KvWrite("job:\u200B1", "1", null), WriteDurability.Full);
        return folder;
    }

    private static async Task ShouldHoldTheLookAlikesAsync(IMemoryStore store)
    {
        (await ((IKeyValueStore)store).GetKvAsync(Me, "job:\u200B1")).Should().NotBeNull();
        var page = await store.ListAsync(Me, new MemoryFilter { UserId = "al\u200Bice" }, 10, null);
        page.Items.Should().ContainSingle();
    }

    [Fact]
    public async Task A_backup_and_a_migration_keep_them_and_an_import_refuses_them()
    {
        var source = await SeededAsync();
        var backup = Path.Combine(_dir.Path, "store.backup");
        await using (var store = SqliteMemoryStore.Open(source))
        {
            await LogicalBackup.CreateAsync(store, backup, "manual", TimeProvider.System);
        }
        var verified = StoreBackup.Verify(backup);
        verified.Ok.Should().BeTrue(string.Join("; ", verified.Problems));
        await using (var restored = SqliteMemoryStore.Open(Path.Combine(_dir.Path, "restored")))
        {
            var result = await LogicalBackup.RestoreAsync(backup, restored);
            result.Ok.Should().BeTrue(string.Join("; ", result.Problems));
            await ShouldHoldTheLookAlikesAsync(restored);
        }

        await using (var from = SqliteMemoryStore.Open(source))
        await using (var to = SqliteMemoryStore.Open(Path.Combine(_dir.Path, "migrated")))
        {
            var report = await StoreMigration.RunAsync(from, to, new MigrationOptions());
            report.Ok.Should().BeTrue(string.Join("; ", report.Differences) + string.Join("; ", report.Errors));
            await ShouldHoldTheLookAlikesAsync(to);
        }

        await using (var from = SqliteMemoryStore.Open(source))
        await using (var to = SqliteMemoryStore.Open(Path.Combine(_dir.Path, "imported")))
        {
            var export = new MemoryStream();
            await StoreExport.WriteAsync(from, export, null, TimeProvider.System);
            export.Position = 0;
            var report = await StoreImport.ReadAsync(to, export, continueOnError: true);
            report.Failed.Should().Be(2);
            report.Errors.Select(e => e.Message).Should().Contain(m => m.Contains("user_id", StringComparison.Ordinal) && m.Contains("invisible", StringComparison.Ordinal))
                .And.Contain(m => m.Contains("key", StringComparison.Ordinal) && m.Contains("invisible", StringComparison.Ordinal));
        }
    }
    /// <summary>
    /// `engram import --in` refuses such an export and says how to take it; with --keep-identifiers it takes the scope value
    /// and the key as they are, as a restore would.
    /// </summary>
    [Fact]
    public async Task The_import_command_names_keep_identifiers_and_takes_them_with_it()
    {
        var source = await SeededAsync();
        var export = Path.Combine(_dir.Path, "export.jsonl");
        var exported = await Cli.CliProcess.RunAsync(["export", "--data", source, "--out", export]);
        exported.ExitCode.Should().Be(0, exported.ToString());

        var target = Path.Combine(_dir.Path, "imported");
        var refused = await Cli.CliProcess.RunAsync(["import", "--data", target, "--in", export]);
        refused.ExitCode.Should().NotBe(0);
        refused.Stderr.Should().Contain("invisible character").And.Contain("--keep-identifiers");

        var taken = await Cli.CliProcess.RunAsync(["import", "--data", target, "--in", export, "--keep-identifiers"]);
        taken.ExitCode.Should().Be(0, taken.ToString());
        await using var store = SqliteMemoryStore.Open(target);
        await ShouldHoldTheLookAlikesAsync(store);

        var misplaced = await Cli.CliProcess.RunAsync(["import", "--data", target, "--format", "mcp-memory", export, "--keep-identifiers"]);
        misplaced.ExitCode.Should().NotBe(0);
        misplaced.Stderr.Should().Contain("--keep-identifiers is for an Engram export");
    }
}
