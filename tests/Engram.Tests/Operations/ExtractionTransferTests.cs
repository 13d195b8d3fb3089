using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Operations;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;
using Engram.Server;
using Engram.Tests.Cli;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Operations;

/// <summary>
/// Export, import, logical backups and <c>engram migrate</c> carry what the LLM features (issue 16) write: a superseded
/// memory's <c>superseded_by</c>, memory links (derived_from, duplicate_of), conversations with their history and their
/// extraction jobs (export format version 2). Real stores on both backends, real HTTP, the scripted model
/// (<see cref="FakeChatModel"/>) for the extraction and the reflection that make the data.
/// </summary>
public sealed class ExtractionTransferTests
{
    private const string Kept = "Alice prefers dark mode in every code editor she uses";
    private const string Duplicate = "Alice prefers dark mode in every code editor she uses daily";
    private const string Other = "The quarterly budget review meeting moved to Friday afternoon";

    private static string Facts(string text) => JsonSerializer.Serialize(new
    {
        facts = new[] { new { text, type = "fact", entities = Array.Empty<string>(), importance = 0.7, valence = 0.2, relations = Array.Empty<object>() } },
    });

    /// <summary>One scripted model for every request these tests make (extraction facts and decisions, merges, reflections).</summary>
    private static FakeReply Answer(FakeRequest r)
    {
        if (r.AllText.Contains("Merge them into one memory", StringComparison.Ordinal))
        {
            return FakeReply.Json(new { content = "Alice prefers dark mode in every code editor she uses, every day" });
        }
        if (r.AllText.Contains("higher-level insights", StringComparison.Ordinal))
        {
            return FakeReply.Json(new { reflections = new[] { new { content = "Bob's notes mix work meetings and editor habits", derived_from = new[] { 1, 2 }, importance = 0.6 } } });
        }
        if (r.AllText.Contains("keep a memory store current", StringComparison.Ordinal))
        {
            return FakeReply.Text(JsonSerializer.Serialize(new { decisions = new[] { new { fact = 1, @event = "SUPERSEDE", memory = 1, reason = "moved to Lisbon" } } }));
        }
        var said = r.LastUserText;
        return FakeReply.Text(Facts(said.Contains("Lisbon", StringComparison.Ordinal) ? "Lives in Lisbon"
            : said.Contains("cello", StringComparison.Ordinal) ? "Plays the cello" : "Lives in Berlin"));
    }

    private static Action<EngramServerOptions> WithModel(FakeChatModel model) => o =>
    {
        o.Llm.BaseUrl = model.BaseUrl;
        o.Llm.Model = "fake";
        o.Llm.MaxRetries = 0;
        o.Llm.ExtractionWorkers = 0; // the test runs each job itself, so one stays queued
        o.Reflect.Enabled = false;
    };

    private static string Conversation(string text, string user) =>
        JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = text }, new { role = "assistant", content = "Noted." } }, user_id = user });

    private static async Task<string> QueueAsync(EngramServer server, string text, string user)
    {
        using var accepted = await server.PostJsonAsync("/v1/memories", Conversation(text, user));
        accepted.StatusCode.Should().Be(HttpStatusCode.Accepted, await accepted.Content.ReadAsStringAsync());
        return (await accepted.JsonAsync()).GetProperty("job_id").GetString()!;
    }

    private static async Task<ExtractionJob> RunAsync(EngramServer server, string jobId)
    {
        var extractor = server.Services.GetRequiredService<ConversationExtractor>();
        (await extractor.RunOneAsync("test", CancellationToken.None)).Should().BeTrue();
        var job = await extractor.GetJobAsync(Caller.Default("test"), jobId);
        job.Status.Should().Be(ExtractionStatus.Succeeded, job.Error);
        return job;
    }

    private sealed record Seeded(string Berlin, string Lisbon, string Reflection, string Kept, string Duplicate, string[] Jobs)
    {
        public string[] Memories => [Berlin, Lisbon, Reflection, Kept, Duplicate];
    }

    /// <summary>
    /// A superseded memory (Berlin, by Lisbon) with two succeeded jobs, a reflection with derived_from links, a merged
    /// near-duplicate (duplicate_of), and a conversation whose job is still queued.
    /// </summary>
    private static async Task<Seeded> SeedAsync(EngramServer server)
    {
        var first = await QueueAsync(server, "I live in Berlin", "alice");
        var berlin = (await RunAsync(server, first)).MemoryIds.Single();
        var second = await QueueAsync(server, "I moved to Lisbon last month", "alice");
        var lisbon = (await RunAsync(server, second)).MemoryIds.Single();
        var queued = await QueueAsync(server, "I have played the cello since I was six", "carol");

        var kept = (await server.CreateAsync(new { content = Kept, user_id = "bob" })).GetProperty("id").GetString()!;
        var duplicate = (await server.CreateAsync(new { content = Duplicate, user_id = "bob" })).GetProperty("id").GetString()!;
        await server.CreateAsync(new { content = Other, user_id = "bob" });
        var reflected = await server.Client.PostAsJsonAsync("/v1/reflect", new { user_id = "bob" });
        var report = await reflected.JsonAsync();
        reflected.StatusCode.Should().Be(HttpStatusCode.OK, report.ToString());
        report.GetProperty("duplicates_merged").GetInt32().Should().Be(1, report.ToString());
        var reflection = report.GetProperty("scopes").EnumerateArray().Single().GetProperty("reflections").EnumerateArray().Single();
        reflection.GetProperty("derived_from").GetArrayLength().Should().Be(2);
        return new Seeded(berlin, lisbon, reflection.GetProperty("id").GetString()!, kept, duplicate, [first, second, queued]);
    }

    /// <summary>What a client reads of the seeded data: memories (without the access counters reads move), links, jobs, flagged duplicates, search.</summary>
    private static async Task<Dictionary<string, string>> AnswersAsync(EngramServer server, Seeded seeded)
    {
        var answers = new Dictionary<string, string>(StringComparer.Ordinal);
        async Task Read(string path, Func<JsonNode, JsonNode>? shape = null)
        {
            using var response = await server.Client.GetAsync(path);
            var text = await response.Content.ReadAsStringAsync();
            response.StatusCode.Should().Be(HttpStatusCode.OK, $"{path}: {text}");
            answers[path] = (shape ?? (n => n))(JsonNode.Parse(text)!).ToJsonString();
        }
        static JsonNode WithoutAccess(JsonNode memory)
        {
            memory.AsObject().Remove("access_count");
            memory.AsObject().Remove("last_accessed_at");
            return memory;
        }
        foreach (var id in seeded.Memories)
        {
            await Read($"/v1/memories/{id}", WithoutAccess);
            await Read($"/v1/memories/{id}/links");
        }
        foreach (var job in seeded.Jobs)
        {
            await Read($"/v1/jobs/{job}");
        }
        // The web UI's admin page lists the tenant's newest jobs, newest first (issue 18), from either store.
        var admin = await server.Client.GetStringAsync("/ui/admin");
        answers["ui jobs"] = string.Join(",", System.Text.RegularExpressions.Regex.Matches(admin, "href=\"/v1/jobs/([^\"]+)\"").Select(m => m.Groups[1].Value));
        await Read("/v1/memories?duplicate_of=*", n => new JsonArray([.. n["items"]!.AsArray().Select(m => JsonValue.Create(m!["id"]!.GetValue<string>()))]));
        await Read("/v1/memories?user_id=alice&include_superseded=true", n => new JsonArray([.. n["items"]!.AsArray().Select(m => JsonValue.Create(m!["id"]!.GetValue<string>()))]));
        var found = await server.SearchAsync(new { query = "Lives in", k = 10, filters = new { user_id = "alice" } });
        answers["search"] = string.Join(",", found.Select(m => m.GetProperty("id").GetString()));
        var everything = await server.SearchAsync(new { query = "Lives in", k = 10, filters = new { user_id = "alice" }, include_superseded = true });
        answers["search include_superseded"] = string.Join(",", everything.Select(m => m.GetProperty("id").GetString()).Order(StringComparer.Ordinal));
        return answers;
    }

    /// <summary>The store's export (the library's, as the CLI and the server write it), all tenants: header and records.</summary>
    private static async Task<(JsonNode Header, List<string> Records)> ExportAsync(string location)
    {
        await using var store = StoreFactory.Open(location);
        using var buffer = new MemoryStream();
        await StoreExport.WriteAsync((IStoreTransfer)store, buffer, null, TimeProvider.System);
        var lines = Encoding.UTF8.GetString(buffer.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return (JsonNode.Parse(lines[0])!, [.. lines.Skip(1)]);
    }

    private static async Task<ImportReport> ImportAsync(string location, string text)
    {
        await using var store = StoreFactory.Open(location);
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(text));
        return await StoreImport.ReadAsync((IStoreTransfer)store, input, continueOnError: true);
    }

    private static IEnumerable<JsonNode> OfKind(List<string> records, string kind) =>
        records.Select(l => JsonNode.Parse(l)!).Where(r => r["kind"]!.GetValue<string>() == kind);

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Superseded_memories_links_conversations_and_jobs_survive_export_import_backup_and_migrate(Backend backend)
    {
        using var temp = new TempDirectory();
        await using var model = await FakeChatModel.StartAsync();
        model.Responder = Answer;
        using var source = await StoreLocation.CreateAsync(backend);
        Seeded seeded;
        Dictionary<string, string> before;
        await using (var server = await EngramServer.StartAsync(source.Value, WithModel(model)))
        {
            seeded = await SeedAsync(server);
            before = await AnswersAsync(server, seeded);
        }
        before["search"].Should().Be(seeded.Lisbon, "search hides the superseded memory");
        before["search include_superseded"].Should().Be(string.Join(",", new[] { seeded.Berlin, seeded.Lisbon }.Order(StringComparer.Ordinal)));
        JsonNode.Parse(before[$"/v1/jobs/{seeded.Jobs[2]}"])!["status"]!.GetValue<string>().Should().Be("queued");
        before["ui jobs"].Split(',').Should().BeEquivalentTo(seeded.Jobs, "the admin page lists every job of the tenant");

        var (header, original) = await ExportAsync(source.Value);
        header["format_version"]!.GetValue<int>().Should().Be(3);
        header["counts"]!["links"]!.GetValue<long>().Should().Be(3, "two derived_from, one duplicate_of");
        header["counts"]!["conversations"]!.GetValue<long>().Should().Be(3);
        header["counts"]!["jobs"]!.GetValue<long>().Should().Be(3);
        OfKind(original, "memory").Single(m => m["id"]!.GetValue<string>() == seeded.Berlin)["superseded_by"]!.GetValue<string>().Should().Be(seeded.Lisbon);
        OfKind(original, "memory").Single(m => m["id"]!.GetValue<string>() == seeded.Lisbon)["superseded_by"].Should().BeNull();
        OfKind(original, "link").Select(l => l!["link_kind"]!.GetValue<string>()).Should().BeEquivalentTo(["derived_from", "derived_from", "duplicate_of"]);
        var conversation = OfKind(original, "conversation").First();
        conversation["body"]!["conversation"]!["messages"]![0]!["content"]!.GetValue<string>().Should().Be("I live in Berlin", "the body is written as the JSON it is");
        conversation["history"]!.AsArray().Select(h => h!["event"]!.GetValue<string>()).Should().Equal("created", "extraction_succeeded");
        var job = OfKind(original, "extraction_job").First();
        job["status"]!.GetValue<string>().Should().Be("succeeded");
        job["plan"]!["decisions"]!.AsArray().Should().ContainSingle();
        // The kinds come in order: a link after the memories, a job after its conversation.
        original.Select(l => Array.IndexOf(ExportKinds.Records, JsonNode.Parse(l)!["kind"]!.GetValue<string>())).Should().BeInAscendingOrder();

        using var target = await StoreLocation.CreateAsync(backend == Backend.Sqlite ? Backend.Postgres : Backend.Sqlite);
        if (backend == Backend.Sqlite)
        {
            // An export imported into an empty PostgreSQL store; a second import skips every record.
            var text = header.ToJsonString() + "\n" + string.Join("\n", original) + "\n";
            var once = await ImportAsync(target.Value, text);
            once.Failed.Should().Be(0, string.Join("; ", once.Errors.Select(e => $"line {e.Line}: {e.Message}")));
            once.Kinds["link"].Imported.Should().Be(3);
            once.Kinds["conversation"].Imported.Should().Be(3);
            once.Kinds["extraction_job"].Imported.Should().Be(3);
            var twice = await ImportAsync(target.Value, text);
            twice.Imported.Should().Be(0);
            twice.Kinds["link"].Skipped.Should().Be(3);
            twice.Kinds["conversation"].Skipped.Should().Be(3);
            twice.Kinds["extraction_job"].Skipped.Should().Be(3);

            // engram migrate, SQLite to PostgreSQL: every kind copied, and its count check covers the new ones.
            using var migrated = await StoreLocation.CreateAsync(Backend.Postgres);
            var run = await CliProcess.RunAsync(["migrate", "--from", source.Value, "--to", migrated.Value, "--json"]);
            run.ExitCode.Should().Be(0, run.ToString());
            var report = run.Json();
            report.GetProperty("ok").GetBoolean().Should().BeTrue(run.ToString());
            var counts = report.GetProperty("target_counts").GetProperty("default");
            counts.GetProperty("memory_links").GetInt64().Should().Be(3);
            counts.GetProperty("conversations").GetInt64().Should().Be(3);
            counts.GetProperty("conversation_history").GetInt64().Should().Be(5, "created and extraction_succeeded twice, created once");
            counts.GetProperty("extraction_jobs").GetInt64().Should().Be(3);
            (await ExportAsync(migrated.Value)).Records.Should().Equal(original);
        }
        else
        {
            // A logical backup of the PostgreSQL store verifies (its counts include the new kinds) and restores into SQLite.
            var file = Path.Combine(temp.Path, "pg.engram-backup");
            BackupManifest manifest;
            await using (var store = StoreFactory.Open(source.Value))
            {
                manifest = await LogicalBackup.CreateAsync(store, file, "manual", TimeProvider.System);
            }
            manifest.Counts["memory_links"].Should().Be(3);
            manifest.Counts["conversations"].Should().Be(3);
            manifest.Counts["extraction_jobs"].Should().Be(3);
            var verified = StoreBackup.Verify(file);
            verified.Ok.Should().BeTrue(string.Join("; ", verified.Problems));
            await using (var empty = StoreFactory.Open(target.Value))
            {
                (await LogicalBackup.RestoreAsync(file, empty)).Ok.Should().BeTrue();
            }
        }
        (await ExportAsync(target.Value)).Records.Should().Equal(original, "every field of every record, the queued job due as it was");

        // The target answers as the source did; the queued job is extracted there once it has a model.
        await using var copy = await EngramServer.StartAsync(target.Value, WithModel(model));
        var after = await AnswersAsync(copy, seeded);
        after.Should().Equal(before);
        var cello = await RunAsync(copy, seeded.Jobs[2]);
        (await (await copy.Client.GetAsync($"/v1/memories/{cello.MemoryIds.Single()}")).JsonAsync()).GetProperty("content").GetString().Should().Be("Plays the cello");
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_version_1_export_imports_and_a_pending_job_comes_in_queued_and_due_and_one_without_its_conversation_is_refused(Backend backend)
    {
        using var location = await StoreLocation.CreateAsync(backend);
        const string Time = "2026-01-01T00:00:00.000Z";
        // Ids as Engram makes them (ULIDs): an import refuses any other.
        const string OldMemory = "01JQ0000000000000000000001", OtherMemory = "01JQ0000000000000000000X01";
        const string Conversation1 = "01JQ0000000000000000000C01", MissingConversation = "01JQ0000000000000000000C99";
        const string RunningJob = "01JQ0000000000000000000J01", OrphanJob = "01JQ0000000000000000000J02";
        var v1 = new StringBuilder()
            .Append("{\"kind\":\"header\",\"format\":\"engram-export\",\"format_version\":1,\"engram_version\":\"0\",\"schema_version\":11,\"created_at\":\"")
            .Append(Time).Append("\",\"tenant\":null,\"last_seq\":0,\"counts\":{\"memories\":1,\"kv\":0,\"entities\":0,\"relations\":0}}\n")
            .Append("{\"kind\":\"memory\",\"tenant\":\"default\",\"id\":\"").Append(OldMemory).Append("\",\"content\":\"an old memory\",\"content_hash\":\"h1\",\"type\":\"fact\",")
            .Append("\"tier\":\"long_term\",\"importance\":0.5,\"valence\":null,\"tags\":[],\"metadata\":{},\"entities\":[],\"user_id\":null,\"agent_id\":null,")
            .Append("\"session_id\":null,\"namespace\":null,\"source\":null,\"created_at\":\"").Append(Time).Append("\",\"updated_at\":\"").Append(Time)
            .Append("\",\"last_accessed_at\":null,\"access_count\":0,\"expires_at\":null,\"valid_from\":null,\"valid_to\":null,\"version\":1,")
            .Append("\"history\":[{\"event\":\"created\",\"actor\":\"test\",\"at\":\"").Append(Time).Append("\",\"version\":1,\"changes\":{}}]}\n");
        var old = await ImportAsync(location.Value, v1.ToString());
        old.Failed.Should().Be(0, string.Join("; ", old.Errors.Select(e => e.Message)));
        old.Kinds["memory"].Imported.Should().Be(1);

        var body = JsonSerializer.Serialize(new StoredConversation(new Conversation([new ConversationMessage("user", "I play the cello")]) { UserId = "carol" }),
            EngramJson.Options);
        var future = DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        string Job(string id, string conversation, string status) =>
            $$"""{"kind":"extraction_job","tenant":"default","id":"{{id}}","conversation_id":"{{conversation}}","actor":"test","status":"{{status}}","attempts":1,"plan":null,"applied":[],"memory_ids":[],"error":null,"model":null,"created_at":"{{Time}}","updated_at":"{{Time}}","next_attempt_at":"{{future}}"}""";
        var v2 = "{\"kind\":\"header\",\"format\":\"engram-export\",\"format_version\":2,\"counts\":{}}\n" +
            $$"""{"kind":"conversation","tenant":"default","id":"{{Conversation1}}","body":{{body}},"created_at":"{{Time}}","history":[{"event":"created","actor":"test","at":"{{Time}}","detail":"job_running"}]}""" + "\n" +
            Job(RunningJob, Conversation1, "running") + "\n" +
            Job(OrphanJob, MissingConversation, "queued") + "\n" +
            $$"""{"kind":"link","tenant":"default","memory_id":"{{OldMemory}}","link_kind":"sibling_of","target_id":"{{OtherMemory}}","created_at":"{{Time}}"}""" + "\n";
        var report = await ImportAsync(location.Value, v2);
        report.Kinds["conversation"].Imported.Should().Be(1);
        report.Kinds["extraction_job"].Imported.Should().Be(1);
        report.Errors.Select(e => (e.Line, e.Kind)).Should().Equal((4, "extraction_job"), (5, "link"));
        report.Errors[0].Message.Should().Contain($"no conversation '{MissingConversation}' in tenant 'default'");
        report.Errors[1].Message.Should().Contain("unknown link_kind 'sibling_of'");

        await using var store = StoreFactory.Open(location.Value);
        (await store.GetAsync(Caller.Default("test"), OldMemory))!.SupersededBy.Should().BeNull("a version 1 memory is current");
        var jobs = (IExtractionJobStore)store;
        var job = await jobs.GetExtractionJobAsync("default", RunningJob);
        job!.Status.Should().Be(ExtractionStatus.Queued, "a job that was running comes in queued");
        job.LeaseOwner.Should().BeNull();
        job.Attempts.Should().Be(1);
        job.NextAttemptAt.Should().BeOnOrBefore(DateTimeOffset.UtcNow, "and due now, though its file said tomorrow");
        job.Input.Conversation.Messages[0].Content.Should().Be("I play the cello");
        var now = DateTimeOffset.UtcNow;
        (await jobs.ClaimExtractionJobAsync("worker", now, now.AddMinutes(1)))!.Id.Should().Be(RunningJob);
    }
}
