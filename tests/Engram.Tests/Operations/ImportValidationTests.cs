using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using Engram.Core.Storage.Transfer;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// engram import --in against edited files (an outside hostile-input probe): a header whose format_version is missing,
/// unsupported or not an integer is bad input (exit 1, a clear message), not an unexpected error; and every record is
/// held to the write paths' rules, through the API's own validators, so what the API would refuse is refused with its
/// line and field instead of landing in the store. The exact round trip of real exports, which must keep importing, is
/// tested in <see cref="ExportImportTests"/>.
/// </summary>
public sealed class ImportValidationTests
{
    /// <summary>Ids as Engram makes them (ULIDs), distinct per <paramref name="n"/>.</summary>
    private static string Id(int n) => "01JQ" + n.ToString("D22", System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("99", "unsupported format_version 99 (this engram reads 1 to {0}); use a newer engram")]
    [InlineData("0", "unsupported format_version 0 (this engram reads 1 to {0})")]
    [InlineData("\"3\"", "format_version must be an integer (the header says \"3\")")]
    [InlineData("3.5", "format_version must be an integer (the header says 3.5)")]
    [InlineData("null", "format_version must be an integer (the header says null)")]
    [InlineData(null, "the header has no format_version (this engram reads export format versions 1 to {0})")]
    public async Task A_header_whose_format_version_is_missing_unsupported_or_not_an_integer_is_bad_input(string? version, string message)
    {
        using var temp = new TempDirectory();
        var expected = string.Format(System.Globalization.CultureInfo.InvariantCulture, message, ExportHeader.CurrentVersion);
        var file = Path.Combine(temp.Path, "header.jsonl");
        var field = version is null ? "" : $"\"format_version\":{version},";
        await File.WriteAllTextAsync(file, "{\"kind\":\"header\",\"format\":\"engram-export\"," + field + "\"counts\":{\"memories\":1}}\n");
        var data = Path.Combine(temp.Path, "data");

        var plain = await CliProcess.RunAsync(["import", "--in", file, "--data", data]);
        plain.ExitCode.Should().Be(1, plain.ToString());
        plain.Stderr.Should().Contain("engram: line 1: " + expected).And.NotContain("unexpected error");

        var json = await CliProcess.RunAsync(["import", "--in", file, "--data", data, "--json"]);
        json.ExitCode.Should().Be(1, json.ToString());
        var problem = JsonDocument.Parse(json.Stderr).RootElement;
        problem.GetProperty("status").GetInt32().Should().Be(400);
        problem.GetProperty("exit_code").GetInt32().Should().Be(1);
        problem.GetProperty("field").GetString().Should().Be("format_version");
        problem.GetProperty("detail").GetString().Should().Be("line 1: " + expected);
    }

    [Fact]
    public async Task A_header_whose_counts_are_not_numbers_still_imports()
    {
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "counts.jsonl");
        // The counts only drive the progress bar; a string among them had been an unexpected error (exit 2).
        await File.WriteAllTextAsync(file, """{"kind":"header","format":"engram-export","format_version":3,"counts":{"memories":"x","kv":null,"entities":-4}}""" + "\n");
        var result = await CliProcess.RunAsync(["import", "--in", file, "--data", Path.Combine(temp.Path, "data"), "--json"]);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Json().GetProperty("imported").GetInt64().Should().Be(0);
    }

    /// <summary>A source with one record of every kind a hand can make through the CLI: the templates the bad lines are edited from.</summary>
    private static async Task<(string Header, JsonObject Memory, JsonObject Kv, JsonObject Alice, JsonObject Acme, JsonObject Relation, string[] Records)>
        ExportTemplatesAsync(string folder)
    {
        var source = Path.Combine(folder, "source");
        foreach (var args in new[]
        {
            new[] { "add", "Alice prefers tea", "--user", "alice", "--tag", "drinks", "--entity", "Alice", "--metadata", """{"from":"chat"}""" },
            ["kv", "set", "app:task:1", """{"state":"claimed"}"""],
            ["graph", "add-entity", "Alice", "--type", "person", "--obs", "likes tea"],
            ["graph", "add-entity", "Acme", "--type", "org"],
            ["graph", "relate", "Alice", "works_at", "Acme"],
        })
        {
            var run = await CliProcess.RunAsync([.. args, "--data", source]);
            run.ExitCode.Should().Be(0, run.ToString());
        }
        var file = Path.Combine(folder, "source.jsonl");
        (await CliProcess.RunAsync(["export", "--data", source, "--out", file])).ExitCode.Should().Be(0);
        var lines = File.ReadAllLines(file);
        var records = lines.Skip(1).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        JsonObject Of(string kind) => records.Single(r => r["kind"]!.GetValue<string>() == kind);
        var entities = records.Where(r => r["kind"]!.GetValue<string>() == "entity").ToList();
        // The tests' files are made of edited records, fewer or more than the export's: their header counts nothing, as a
        // header that announced the export's records would have the import refuse such a file as cut short.
        var header = JsonNode.Parse(lines[0])!.AsObject();
        header.Remove("counts");
        return (header.ToJsonString(), Of("memory"), Of("kv"), entities.Single(e => e["name"]!.GetValue<string>() == "Alice"),
            entities.Single(e => e["name"]!.GetValue<string>() == "Acme"), Of("relation"), lines[1..]);
    }

    private static JsonObject Edit(JsonObject template, Action<JsonObject> change)
    {
        var copy = template.DeepClone().AsObject();
        change(copy);
        return copy;
    }

    [Fact]
    public async Task Records_the_api_would_refuse_are_refused_with_their_line_and_field_and_nothing_of_them_is_stored()
    {
        using var temp = new TempDirectory();
        var (header, memory, kv, alice, acme, relation, records) = await ExportTemplatesAsync(temp.Path);
        var stamp = memory["created_at"]!.GetValue<string>();
        var conversation = new JsonObject
        {
            ["kind"] = "conversation",
            ["tenant"] = "default",
            ["id"] = Id(900),
            ["body"] = JsonNode.Parse(JsonSerializer.Serialize(new StoredConversation(new Conversation([new ConversationMessage("user", "I play the cello")])),
                EngramJson.Options)),
            ["created_at"] = stamp,
            ["history"] = new JsonArray(),
        };
        JsonObject Job(string id, string memoryId) => new()
        {
            ["kind"] = "extraction_job",
            ["tenant"] = "default",
            ["id"] = id,
            ["conversation_id"] = Id(900),
            ["actor"] = "test",
            ["status"] = "succeeded",
            ["attempts"] = 1,
            ["plan"] = null,
            ["applied"] = new JsonArray(),
            ["memory_ids"] = new JsonArray(memoryId),
            ["error"] = null,
            ["model"] = null,
            ["created_at"] = stamp,
            ["updated_at"] = stamp,
        };
        var next = 0;
        JsonObject Memory(Action<JsonObject> change) => Edit(memory, m =>
        {
            m["id"] = Id(++next);
            m["content"] = $"memory edited {next}";
            change(m);
        });
        JsonObject Key(Action<JsonObject> change) => Edit(kv, k =>
        {
            k["key"] = $"app:default:task:{100 + ++next}";
            change(k);
        });
        JsonObject Entity(Action<JsonObject> change) => Edit(alice, e =>
        {
            e["name"] = $"Entity {++next}";
            change(e);
        });

        // What must come in: the source's records (the memory's content_hash edited: the hash is computed from the content).
        var good = new List<(JsonObject Record, string? Refusal)>
        {
            (Edit(memory, m => m["content_hash"] = "x"), null),
            (kv, null),
            (alice, null),
            (acme, null),
            (relation, null),
            (conversation, null),
            // A successor deleted after the link was made: the API keeps such a link, so a sound store exports it.
            (Memory(m => m["superseded_by"] = Id(999)), null),
        };
        var bad = new List<(JsonObject Record, string Refusal)>
        {
            (Edit(memory, m => m["id"] = "garbage"), "'id' must be a ULID"),
            (Memory(m => m["importance"] = 7), "importance must be between 0 and 1 (got 7)"),
            (Memory(m => m["valence"] = -9), "valence must be between -1 and 1 (got -9)"),
            (Memory(m => m["type"] = "NOT A TYPE"), "type must be a lowercase word"),
            (Memory(m => m["user_id"] = "  spaced\u0000 "), "user_id must be 1-256 characters without control characters or surrounding white space"),
            (Memory(m => m["tags"] = new JsonArray("", "", "")), "tags must be non-empty strings"),
            (Memory(m => m["entities"] = new JsonArray("bell\u0007")), "entity names must not contain control characters"),
            (Memory(m => m["metadata"] = new JsonObject { ["blob"] = new string('m', 20_000) }), "metadata is 20011 bytes of JSON; the limit is 16384"),
            (Memory(m => m["content"] = new string('c', 100_000)), "content has 100000 characters; the limit is 32768"),
            (Memory(m => m["version"] = long.MaxValue), $"'version' must be 1 to {ImportValidation.MaxVersion} (got {long.MaxValue})"),
            (Memory(m => m["version"] = -5), $"'version' must be 1 to {ImportValidation.MaxVersion} (got -5)"),
            (Memory(m => m["history"]![0]!["version"] = 0), "'history[0].version' must be 1 to"),
            (Memory(m => m["access_count"] = -1), "'access_count' must not be negative"),
            (Memory(m => m["superseded_by"] = ""), "superseded_by must be 1-256 characters"),
            (Memory(m => m["superseded_by"] = m["id"]!.GetValue<string>()), "superseded_by is the memory's own id: a memory cannot supersede itself"),
            (Memory(m => m["created_at"] = "2030-01-01T00:00:00.000Z"), "created_at must not be in the future"),
            (Memory(m => m["updated_at"] = "2001-01-01T00:00:00.000Z"), "updated_at (2001-01-01T00:00:00.000Z) must not be before created_at"),
            (Memory(m => m["version"] = 7), "the memory is at version 7 but its history has 1 entry"),
            (Memory(m => (m["version"], m["history"]) = (2, new JsonArray())), "the memory is at version 2 but its history has 0 entries"),
            (Memory(m => m["history"]!.AsArray().Add(m["history"]![0]!.DeepClone())), "'history[1].version' must be 2"),
            (Memory(m => (m["valid_from"], m["valid_to"]) = ("2026-02-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z")), "valid_to must not be before valid_from"),
            (Key(k => k["key"] = ""), "the key must not be empty"),
            (Key(k => k["key"] = "ctl\u0001key"), "the key must not contain control characters"),
            (Key(k => k["key"] = new string('k', 3000)), "the key is 3000 UTF-8 bytes; the limit is 512"),
            (Key(k => k["key"] = "app:task:9"), "is stored with its tenant as the second part ('app:default:task:9')"),
            (Key(k => k["version"] = 0), "'version' must be 1 to"),
            (Key(k => k["value"] = "LONE SURROGATE"), "value is not valid Unicode"),
            (Key(k => k["history"]![0]!["value"] = "LONE SURROGATE"), "history[0].value is not valid Unicode"),
            (Entity(e => e["name"] = " "), "name is required and must not be blank"),
            (Entity(e => e["name"] = "bell\u0007"), "name must not contain control characters"),
            (Entity(e => e["entity_type"] = new string('t', 200)), "entity_type is 200 characters; at most 128"),
            (Entity(e => e["observations"]![0]!["content"] = new string('o', 5000)), "observations[0].content is 5000 bytes of UTF-8; at most 4096"),
            (Entity(e => (e["observations"]![0]!["valid_from"], e["observations"]![0]!["valid_to"]) = ("2026-02-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z")),
                "observations[0].valid_to must be after valid_from"),
            (Edit(relation, r => r["relation_type"] = ""), "relation_type is required and must not be blank"),
            (Edit(relation, r => r["from"] = "bell\u0007"), "from must not contain control characters"),
            (new JsonObject { ["kind"] = "link", ["tenant"] = "default", ["memory_id"] = "garbage", ["link_kind"] = "derived_from", ["target_id"] = Id(1), ["created_at"] = stamp },
                "'memory_id' must be a ULID"),
            (Edit(conversation, c => c["id"] = "conv_1"), "'id' must be a ULID"),
            (Edit(conversation, c => (c["id"], c["body"]) = (Id(901), JsonNode.Parse("""{"conversation":{"messages":[]}}"""))),
                "'body' is not a conversation as Engram stores one: messages must hold at least one message"),
            (Edit(conversation, c => (c["id"], c["body"]) = (Id(902), "not json")), "'body' is not a conversation as Engram stores one"),
            (Job("job_1", Id(1)), "'id' must be a ULID"),
            (Job(Id(903), "garbage"), "'memory_ids' must hold memory ids (ULIDs)"),
        };
        // The good records first (relations need their entities, jobs their conversation), then one bad line each.
        var lines = new List<string> { header };
        lines.AddRange(good.Select(g => g.Record.ToJsonString()));
        lines.AddRange(bad.Select(b => b.Record.ToJsonString().Replace("\"LONE SURROGATE\"", "\"\\ud800\"", StringComparison.Ordinal)));
        var file = Path.Combine(temp.Path, "edited.jsonl");
        await File.WriteAllLinesAsync(file, lines);

        var data = Path.Combine(temp.Path, "target");
        var result = await CliProcess.RunAsync(["import", "--in", file, "--data", data, "--continue-on-error", "--json"]);
        result.ExitCode.Should().Be(1, result.ToString());
        var report = result.Json();
        report.GetProperty("imported").GetInt64().Should().Be(good.Count, result.ToString());
        report.GetProperty("failed").GetInt64().Should().Be(bad.Count);
        var errors = report.GetProperty("errors").EnumerateArray().ToList();
        errors.Should().HaveCount(bad.Count);
        for (var i = 0; i < bad.Count; i++)
        {
            var line = 2 + good.Count + i;
            errors[i].GetProperty("line").GetInt32().Should().Be(line);
            errors[i].GetProperty("kind").GetString().Should().Be(bad[i].Record["kind"]!.GetValue<string>());
            errors[i].GetProperty("message").GetString().Should().Contain(bad[i].Refusal, $"line {line} is {lines[line - 1][..Math.Min(200, lines[line - 1].Length)]}");
        }

        // The store holds the good records exactly as the source had them, and nothing of the refused ones.
        var copy = Path.Combine(temp.Path, "copy.jsonl");
        (await CliProcess.RunAsync(["export", "--data", data, "--out", copy])).ExitCode.Should().Be(0);
        var exported = File.ReadAllLines(copy).Skip(1).ToList();
        exported.Should().HaveCount(good.Count);
        records.Should().HaveCount(5);
        exported.Should().Contain(records, "the source's records come back exactly, the memory's content hash the content's whatever the file said");
        exported.Should().ContainSingle(l => l.Contains("\"kind\":\"conversation\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tag_of_invisible_characters_only_from_an_older_store_is_dropped_and_a_blank_tag_is_still_refused()
    {
        using var temp = new TempDirectory();
        var (header, memory, _, _, _, _, _) = await ExportTemplatesAsync(temp.Path);
        // A release before tags were folded stored "\u200B" as a tag; its export must import as that store reads after its
        // own migration (the tag dropped), not have the memory refused.
        var older = Edit(memory, m => m["tags"] = new JsonArray("\u200B", "drinks", "\uFEFF\u2060", "drinks\u200B"));
        var blank = Edit(memory, m => (m["id"], m["content"], m["tags"]) = (Id(77), "blank tag", new JsonArray("drinks", " ")));
        var file = Path.Combine(temp.Path, "older.jsonl");
        await File.WriteAllLinesAsync(file, [header, older.ToJsonString(), blank.ToJsonString()]);

        var data = Path.Combine(temp.Path, "target");
        var result = await CliProcess.RunAsync(["import", "--in", file, "--data", data, "--continue-on-error", "--json"]);
        result.ExitCode.Should().Be(1, result.ToString());
        var report = result.Json();
        report.GetProperty("imported").GetInt64().Should().Be(1, result.ToString());
        var error = report.GetProperty("errors").EnumerateArray().Should().ContainSingle().Subject;
        error.GetProperty("line").GetInt32().Should().Be(3);
        error.GetProperty("message").GetString().Should().Contain("tags must be non-empty strings");

        var shown = await CliProcess.RunAsync(["get", memory["id"]!.GetValue<string>(), "--data", data, "--json"]);
        shown.ExitCode.Should().Be(0, shown.ToString());
        shown.Json().GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("drinks");
    }

    [Fact]
    public async Task A_file_cut_at_a_line_boundary_is_refused_as_truncated_and_what_it_held_stays_imported()
    {
        using var temp = new TempDirectory();
        await ExportTemplatesAsync(temp.Path);
        var whole = await File.ReadAllLinesAsync(Path.Combine(temp.Path, "source.jsonl"));
        whole.Should().HaveCount(6, "a header and five records");
        var cut = Path.Combine(temp.Path, "cut.jsonl");
        await File.WriteAllLinesAsync(cut, whole[..3]);

        var data = Path.Combine(temp.Path, "target");
        var result = await CliProcess.RunAsync(["import", "--in", cut, "--data", data]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Contain("the file ends after 2 of the 5 records its header announces (truncated?)")
            .And.Contain("the records read are imported and stay");
        var memoryId = JsonNode.Parse(whole[1])!["id"]!.GetValue<string>();
        (await CliProcess.RunAsync(["get", memoryId, "--data", data])).ExitCode.Should().Be(0, "what the cut file held is imported");

        var headerOnly = Path.Combine(temp.Path, "header-only.jsonl");
        await File.WriteAllLinesAsync(headerOnly, whole[..1]);
        var empty = await CliProcess.RunAsync(["import", "--in", headerOnly, "--data", Path.Combine(temp.Path, "empty"), "--json"]);
        empty.ExitCode.Should().Be(1, empty.ToString());
        JsonDocument.Parse(empty.Stderr).RootElement.GetProperty("detail").GetString().Should()
            .StartWith("the file ends after 0 of the 5 records its header announces (truncated?)");

        // The whole file, blank lines (spaces only too) between its records, imports; the cut one's records are skipped.
        var spaced = Path.Combine(temp.Path, "spaced.jsonl");
        await File.WriteAllLinesAsync(spaced, [whole[0], .. whole[1..].SelectMany(l => new[] { l, "   \t " }), ""]);
        var rest = await CliProcess.RunAsync(["import", "--in", spaced, "--data", data, "--json"]);
        rest.ExitCode.Should().Be(0, rest.ToString());
        rest.Json().GetProperty("imported").GetInt64().Should().Be(3);
        rest.Json().GetProperty("skipped").GetInt64().Should().Be(2);
    }

    [Fact]
    public async Task A_line_longer_than_any_record_is_refused_while_reading_and_the_lines_after_it_import()
    {
        using var temp = new TempDirectory();
        var (header, memory, _, _, _, _, _) = await ExportTemplatesAsync(temp.Path);
        var after = Edit(memory, m => (m["id"], m["content"]) = (Id(2), "the line after the long one"));
        var file = Path.Combine(temp.Path, "long.jsonl");
        // Past the bound (about 90 million characters: the largest vector record) without being one JSON document in memory here.
        const int Chunk = 1 << 20;
        var filler = new string('x', Chunk);
        await using (var writer = new StreamWriter(file))
        {
            await writer.WriteLineAsync(header);
            await writer.WriteLineAsync(memory.ToJsonString());
            await writer.WriteAsync("""{"kind":"memory","content":" """);
            for (var i = 0; i < 100; i++)
            {
                await writer.WriteAsync(filler);
            }
            await writer.WriteLineAsync("\"}");
            await writer.WriteLineAsync(after.ToJsonString());
        }

        var result = await CliProcess.RunAsync(["import", "--in", file, "--data", Path.Combine(temp.Path, "target"), "--continue-on-error", "--json"]);
        result.ExitCode.Should().Be(1, result.ToString()[..Math.Min(2000, result.ToString().Length)]);
        var report = result.Json();
        report.GetProperty("imported").GetInt64().Should().Be(2);
        var error = report.GetProperty("errors").EnumerateArray().Single();
        error.GetProperty("line").GetInt32().Should().Be(3);
        error.GetProperty("message").GetString().Should().Contain("characters long, more than any record can be");

        // Whitespace-only lines are blank lines, skipped as empty ones are (not a raw JSON error).
        var blank = Path.Combine(temp.Path, "blank.jsonl");
        await File.WriteAllTextAsync(blank, header + "\n \t \n" + after.ToJsonString() + "\r\n   \n");
        var spaced = await CliProcess.RunAsync(["import", "--in", blank, "--data", Path.Combine(temp.Path, "blank"), "--json"]);
        spaced.ExitCode.Should().Be(0, spaced.ToString());
        spaced.Json().GetProperty("imported").GetInt64().Should().Be(1);
    }

    [Fact]
    public async Task The_progress_never_counts_past_its_total_when_a_file_holds_more_lines_than_its_header_counts()
    {
        using var temp = new TempDirectory();
        var header = """{"kind":"header","format":"engram-export","format_version":3,"counts":{"memories":1}}""";
        const string Key = """{"kind":"kv","tenant":"default","key":"k","value":"v","expires_at":null,"version":1,"created_at":"2026-01-01T00:00:00.000Z",""" +
            """ "updated_at":"2026-01-01T00:00:00.000Z","history":[]}""";
        var text = string.Join('\n', [header, "not json", "{\"kind\":\"nothing\"}", "[]", Key]) + "\n";
        var seen = new List<Engram.Core.Operations.OperationProgress>();
        await using var store = Engram.Core.Storage.StoreFactory.Open(Path.Combine(temp.Path, "data"));
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var report = await StoreImport.ReadAsync((IStoreTransfer)store, input, continueOnError: true,
            progress: new SynchronousProgress(seen.Add));

        report.Failed.Should().Be(3);
        report.Imported.Should().Be(1);
        report.EndsEarly.Should().BeNull("four lines were read where the header counts one");
        seen.Should().HaveCountGreaterThan(1).And.OnlyContain(p => p.Done <= p.Total, "the batch's report said 4/1 records");
        seen[^1].Done.Should().Be(4);
    }

    private sealed class SynchronousProgress(Action<Engram.Core.Operations.OperationProgress> report) : IProgress<Engram.Core.Operations.OperationProgress>
    {
        public void Report(Engram.Core.Operations.OperationProgress value) => report(value);
    }

    [Fact]
    public async Task Without_continue_on_error_a_refused_record_stops_the_import_with_exit_1_and_is_not_stored()
    {
        using var temp = new TempDirectory();
        var (header, memory, _, _, _, _, _) = await ExportTemplatesAsync(temp.Path);
        var refused = Edit(memory, m => (m["id"], m["importance"]) = (Id(7), 7));
        var after = Edit(memory, m => (m["id"], m["content"]) = (Id(8), "a line after the refused one, in the same batch"));
        var file = Path.Combine(temp.Path, "edited.jsonl");
        await File.WriteAllLinesAsync(file, [header, memory.ToJsonString(), refused.ToJsonString(), after.ToJsonString()]);

        var data = Path.Combine(temp.Path, "target");
        var result = await CliProcess.RunAsync(["import", "--in", file, "--data", data]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Contain("engram: line 3 (memory): importance must be between 0 and 1 (got 7)").And.Contain("stopped at line 3");
        result.Stdout.Should().Contain("memory: 1 imported, 0 skipped, 1 failed");
        (await CliProcess.RunAsync(["get", memory["id"]!.GetValue<string>(), "--data", data])).ExitCode.Should().Be(0);
        foreach (var id in new[] { Id(7), Id(8) })
        {
            // Neither the refused record nor the one after it in the same batch: the import stops at line 3.
            var missing = await CliProcess.RunAsync(["get", id, "--data", data]);
            missing.ExitCode.Should().Be(1, missing.ToString());
            missing.Stderr.Should().Contain("no memory with id");
        }
    }

    [Fact]
    public async Task The_size_limits_are_the_importing_processs_configured_ones()
    {
        using var temp = new TempDirectory();
        var (header, memory, kv, _, _, _, _) = await ExportTemplatesAsync(temp.Path);
        var large = Edit(memory, m => (m["id"], m["content"]) = (Id(1), new string('c', 100_000)));
        var value = Edit(kv, k => (k["key"], k["value"]) = ("app:default:task:2", new string('v', 100)));
        var file = Path.Combine(temp.Path, "large.jsonl");
        await File.WriteAllLinesAsync(file, [header, large.ToJsonString(), value.ToJsonString()]);

        var refused = await CliProcess.RunAsync(["import", "--in", file, "--data", Path.Combine(temp.Path, "default"), "--continue-on-error", "--json"],
            environment: new Dictionary<string, string> { ["Engram__KeyValue__MaxValueBytes"] = "64" });
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Json().GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("message").GetString()).Should()
            .Equal("content has 100000 characters; the limit is 32768", "the value is 102 bytes of JSON; the limit is 64");

        // A file from a server whose limits were raised imports where the same limits are set.
        var raised = await CliProcess.RunAsync(["import", "--in", file, "--data", Path.Combine(temp.Path, "raised"), "--json"],
            environment: new Dictionary<string, string> { ["Engram__Limits__MaxContentChars"] = "100000" });
        raised.ExitCode.Should().Be(0, raised.ToString());
        raised.Json().GetProperty("imported").GetInt64().Should().Be(2);
    }

    [Fact]
    public async Task A_memory_at_the_highest_version_cannot_be_updated_and_its_version_never_wraps()
    {
        await using var server = await EngramServer.StartAsync();
        var id = (await server.CreateAsync(new { content = "a memory at the end of its versions" })).GetProperty("id").GetString()!;
        // Only an edited import could have brought such a version (imports refuse it now); written directly here.
        using (var db = SqliteConnection.Open(Path.Combine(server.DataPath, SqliteMemoryStore.FileName)))
        {
            db.ExecuteNonQuery("UPDATE memories SET version = ?1 WHERE id = ?2", long.MaxValue, id);
        }

        var patched = await server.PatchJsonAsync($"/v1/memories/{id}", """{"importance":0.9}""");
        var problem = await patched.ShouldBeProblemAsync(HttpStatusCode.Conflict);
        problem.GetProperty("detail").GetString().Should().Contain($"is at version {long.MaxValue}").And.Contain("cannot be updated");
        var current = await (await server.Client.GetAsync($"/v1/memories/{id}")).JsonAsync();
        current.GetProperty("version").GetInt64().Should().Be(long.MaxValue);
        current.GetProperty("importance").GetDouble().Should().Be(0.5, "nothing of the refused update is stored");
    }
}
