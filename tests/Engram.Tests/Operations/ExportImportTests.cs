using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Security;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// engram export / engram import --in and GET /v1/admin/export (issue 14), on real stores, the real CLI
/// and a real server: the round trip is exact, duplicates are skipped and counted, bad lines are reported
/// with their line number, and an export never holds API keys.
/// </summary>
public sealed class ExportImportTests
{
    /// <summary>
    /// A store with two tenants, updated memories (history), key-value entries with history and TTLs (one key of three parts,
    /// stored with its tenant inserted), and a graph with validity: what an import must take back exactly, every field
    /// passing the write paths' rules it is checked by.
    /// </summary>
    internal static async Task<(EngramServer Server, string AdminKey)> SeedAsync(string? dataPath = null)
    {
        var server = await EngramServer.StartAsync(dataPath);
        var key = await server.CreateKeyAsync("default", Role.Admin, name: "seed");
        foreach (var tenant in new[] { "default", "globex" })
        {
            var client = server.ClientWithKey(key, tenant);
            for (var i = 0; i < 5; i++)
            {
                var body = new Dictionary<string, object>
                {
                    ["content"] = $"{tenant} memory {i} about Alice",
                    ["type"] = i == 0 ? "observation" : "fact",
                    ["tags"] = new[] { "t" + i, "shared" },
                    ["entities"] = i == 2 ? new[] { "Alice", "Zoë" } : new[] { "Alice" },
                    ["metadata"] = new { n = i, nested = new { s = "é ü 😀" } },
                    ["importance"] = 0.25 + i / 10.0,
                };
                if (i % 2 == 0)
                {
                    body["user_id"] = "alice";
                }
                if (i == 4)
                {
                    body["ttl_seconds"] = 86400;
                }
                if (i == 1)
                {
                    body["valence"] = -0.5;
                    body["agent_id"] = "agent 7";
                }
                var created = await client.PostAsJsonAsync("/v1/memories", body);
                created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
                var id = (await created.JsonAsync()).GetProperty("id").GetString()!;
                if (i < 2)
                {
                    (await client.PatchAsJsonAsync($"/v1/memories/{id}", new { content = $"{tenant} memory {i}, revised", tags = new[] { "revised" } })).EnsureSuccessStatusCode();
                }
            }
            (await client.PutAsJsonAsync("/v1/kv/config", new { value = new { a = 1 } })).EnsureSuccessStatusCode();
            (await client.PutAsJsonAsync("/v1/kv/config", new { value = new { a = 2, b = new[] { 1, 2 } }, ttl_seconds = 3600 })).EnsureSuccessStatusCode();
            (await client.PostAsJsonAsync("/v1/kv/counter/incr", new { by = 5 })).EnsureSuccessStatusCode();
            (await client.PutAsJsonAsync("/v1/kv/gone", new { value = "x" })).EnsureSuccessStatusCode();
            (await client.DeleteAsync("/v1/kv/gone")).EnsureSuccessStatusCode();
            (await client.PutAsJsonAsync("/v1/kv/app:task:1", new { value = "claimed", ttl_seconds = 0 })).EnsureSuccessStatusCode();
            (await client.PostAsJsonAsync("/v1/graph/entities", new
            {
                entities = new object[]
                {
                    new { name = "Alice", entity_type = "person", observations = new[] { "likes tea" } },
                    new { name = "Acme", entity_type = "org", observations = new object[] { new { content = "founded long ago", valid_from = "2001-01-01T00:00:00Z" } } },
                },
            })).EnsureSuccessStatusCode();
            (await client.PostAsJsonAsync("/v1/graph/relations", new
            {
                relations = new[] { new { from = "Alice", to = "Acme", relation_type = "works_at", weight = 0.5, valid_from = "2020-01-01T00:00:00Z" } },
            })).EnsureSuccessStatusCode();
        }
        return (server, key);
    }

    private static List<string> Records(string file) => [.. File.ReadAllLines(file).Skip(1)];

    [Fact]
    public async Task An_export_imported_into_an_empty_store_exports_the_same_records_and_http_streams_the_same_file()
    {
        using var temp = new TempDirectory();
        var (server, key) = await SeedAsync();
        await using (server)
        {
            var first = Path.Combine(temp.Path, "first.jsonl");
            var exported = await CliProcess.RunAsync(["export", "--data", server.DataPath, "--out", first, "--json"]);
            exported.ExitCode.Should().Be(0, exported.ToString());
            var summary = exported.Json();
            summary.GetProperty("memories").GetInt64().Should().Be(10);
            summary.GetProperty("kv").GetInt64().Should().Be(6);
            summary.GetProperty("entities").GetInt64().Should().Be(4);
            summary.GetProperty("relations").GetInt64().Should().Be(2);

            var text = await File.ReadAllTextAsync(first);
            text.Should().NotContain("egm_", "API keys are never exported").And.NotContain("api_key_secret");
            var header = JsonNode.Parse(File.ReadLines(first).First())!;
            header["format"]!.GetValue<string>().Should().Be("engram-export");
            header["format_version"]!.GetValue<int>().Should().Be(3);
            header["counts"]!["memories"]!.GetValue<long>().Should().Be(10);

            // Every version is in the memory's history; the kv entry's history holds both sets.
            var revised = Records(first).Select(l => JsonNode.Parse(l)!).First(r => r["kind"]!.GetValue<string>() == "memory" && r["version"]!.GetValue<long>() == 2);
            revised["history"]!.AsArray().Select(h => h!["event"]!.GetValue<string>()).Should().Equal("created", "updated");
            var config = Records(first).Select(l => JsonNode.Parse(l)!).First(r => r["kind"]!.GetValue<string>() == "kv" && r["key"]!.GetValue<string>() == "config");
            config["history"]!.AsArray().Should().HaveCount(2);
            config["expires_at"].Should().NotBeNull();

            // The server's streamed export of every tenant is the same file (but for the header's time).
            var admin = server.ClientWithKey(key);
            using var response = await admin.GetAsync("/v1/admin/export?all_tenants=true", HttpCompletionOption.ResponseHeadersRead);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            response.Content.Headers.ContentType!.MediaType.Should().Be("application/x-ndjson");
            var streamed = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            streamed.Skip(1).Should().Equal(Records(first));

            // The caller's tenant alone by default.
            var own = (await admin.GetStringAsync("/v1/admin/export")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            own.Skip(1).Should().Equal(Records(first).Where(l => l.Contains("\"tenant\":\"default\"", StringComparison.Ordinal)));

            var copy = Path.Combine(temp.Path, "copy");
            var imported = await CliProcess.RunAsync(["import", "--data", copy, "--in", first, "--json"]);
            imported.ExitCode.Should().Be(0, imported.ToString());
            var counts = imported.Json();
            counts.GetProperty("imported").GetInt64().Should().Be(22);
            counts.GetProperty("skipped").GetInt64().Should().Be(0);
            counts.GetProperty("failed").GetInt64().Should().Be(0);

            var second = Path.Combine(temp.Path, "second.jsonl");
            (await CliProcess.RunAsync(["export", "--data", copy, "--out", second])).ExitCode.Should().Be(0);
            Records(second).Should().Equal(Records(first), "ids, content, metadata, scopes, tiers, tags, entities, times, versions, history, KV and graph all survive");

            // The imported store is searchable and its history readable through the ordinary commands.
            var search = await CliProcess.RunAsync(["search", "revised", "--data", copy, "--json"]);
            search.ExitCode.Should().Be(0, search.ToString());
            search.Json().GetProperty("results").GetArrayLength().Should().BeGreaterThan(0);
            var kv = await CliProcess.RunAsync(["kv", "get", "config", "--data", copy]);
            kv.Stdout.Trim().Should().Be("""{"a":2,"b":[1,2]}""");
            Records(second).Should().Contain(l => l.Contains("\"key\":\"app:default:task:1\"", StringComparison.Ordinal), "a key of three parts is stored with its tenant");
            var task = await CliProcess.RunAsync(["kv", "get", "app:task:1", "--data", copy]);
            task.Stdout.Trim().Should().Be("\"claimed\"", task.ToString());
        }
    }

    [Fact]
    public async Task Values_nested_as_deeply_as_stored_values_may_export_and_import_again()
    {
        using var temp = new TempDirectory();
        // A record wraps a value a few levels down (a memory's history, a key's history).
        var depth = Engram.Core.Common.StoredJsonRules.MaxDepth;
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
        var file = Path.Combine(temp.Path, "deep.jsonl");
        await using (var server = await EngramServer.StartAsync())
        {
            (await server.PostJsonAsync("/v1/memories", "{\"content\":\"deep metadata\",\"metadata\":" + deep + "}")).StatusCode.Should().Be(HttpStatusCode.Created);
            (await server.SendJsonAsync("PUT", "/v1/kv/deep", "{\"value\":" + deep + "}")).StatusCode.Should().Be(HttpStatusCode.Created);
            (await server.SendJsonAsync("PUT", "/v1/kv/deep", "{\"value\":" + deep.Replace("1", "2", StringComparison.Ordinal) + "}")).StatusCode.Should().Be(HttpStatusCode.OK);
            var exported = await CliProcess.RunAsync(["export", "--data", server.DataPath, "--out", file]);
            exported.ExitCode.Should().Be(0, exported.ToString());
        }
        var copy = Path.Combine(temp.Path, "copy");
        var imported = await CliProcess.RunAsync(["import", "--data", copy, "--in", file, "--json"]);
        imported.ExitCode.Should().Be(0, imported.ToString());
        imported.Json().GetProperty("imported").GetInt64().Should().Be(2);
        var again = Path.Combine(temp.Path, "again.jsonl");
        (await CliProcess.RunAsync(["export", "--data", copy, "--out", again])).ExitCode.Should().Be(0);
        Records(again).Should().Equal(Records(file));
        Records(again).Should().Contain(l => l.Contains(deep, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Importing_into_a_store_that_has_the_records_skips_them_and_counts_each_kind()
    {
        using var temp = new TempDirectory();
        var (server, _) = await SeedAsync();
        var file = Path.Combine(temp.Path, "all.jsonl");
        await using (server)
        {
            (await CliProcess.RunAsync(["export", "--data", server.DataPath, "--out", file])).ExitCode.Should().Be(0);
        }
        var data = Path.Combine(temp.Path, "target");
        // The same content in the same scope under another id is a duplicate too.
        var first = JsonNode.Parse(Records(file)[0])!;
        (await CliProcess.RunAsync(["add", first["content"]!.GetValue<string>(), "--user", first["user_id"]?.GetValue<string>() ?? "", "--data", data]))
            .ExitCode.Should().Be(0);
        var once = await CliProcess.RunAsync(["import", "--data", data, "--in", file, "--json"]);
        once.ExitCode.Should().Be(0, once.ToString());
        once.Json().GetProperty("kinds").GetProperty("memory").GetProperty("skipped").GetInt64().Should().Be(1);
        once.Json().GetProperty("imported").GetInt64().Should().Be(21);

        var again = await CliProcess.RunAsync(["import", "--data", data, "--in", file]);
        again.ExitCode.Should().Be(0, again.ToString());
        again.Stdout.Should().Contain("memory: 0 imported, 10 skipped").And.Contain("kv: 0 imported, 6 skipped")
            .And.Contain("entity: 0 imported, 4 skipped").And.Contain("relation: 0 imported, 2 skipped");
    }

    [Fact]
    public async Task A_bad_line_stops_the_import_with_its_number_unless_told_to_continue()
    {
        using var temp = new TempDirectory();
        var source = Path.Combine(temp.Path, "source");
        foreach (var text in new[] { "one", "two", "three" })
        {
            (await CliProcess.RunAsync(["add", text, "--data", source])).ExitCode.Should().Be(0);
        }
        var file = Path.Combine(temp.Path, "export.jsonl");
        (await CliProcess.RunAsync(["export", "--data", source, "--out", file])).ExitCode.Should().Be(0);
        var lines = File.ReadAllLines(file).ToList();
        lines.Insert(2, "{not json");
        lines.Insert(4, """{"kind":"relation","tenant":"default","from":"Nobody","to":"Nothing","relation_type":"knows","created_at":"2026-01-01T00:00:00Z"}""");
        var bad = Path.Combine(temp.Path, "bad.jsonl");
        await File.WriteAllLinesAsync(bad, lines);

        var stopped = await CliProcess.RunAsync(["import", "--data", Path.Combine(temp.Path, "a"), "--in", bad]);
        stopped.ExitCode.Should().Be(1, stopped.ToString());
        stopped.Stderr.Should().Contain("line 3").And.Contain("not valid JSON").And.Contain("stopped at line 3");
        stopped.Stdout.Should().Contain("memory: 1 imported");
        (await CliProcess.RunAsync(["list", "--data", Path.Combine(temp.Path, "a"), "--json"])).Json().GetProperty("items").GetArrayLength().Should().Be(1);

        var continued = await CliProcess.RunAsync(["import", "--data", Path.Combine(temp.Path, "b"), "--in", bad, "--continue-on-error", "--json"]);
        continued.ExitCode.Should().Be(1, continued.ToString());
        var report = continued.Json();
        report.GetProperty("imported").GetInt64().Should().Be(3);
        report.GetProperty("failed").GetInt64().Should().Be(2);
        report.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("line").GetInt32()).Should().Equal(3, 5);
        report.GetProperty("errors")[1].GetProperty("message").GetString().Should().Contain("no entity named 'Nobody'");
    }

    [Fact]
    public async Task Import_tells_an_export_from_an_mcp_memory_file_and_export_keeps_an_existing_file()
    {
        using var temp = new TempDirectory();
        var mcp = Path.Combine(temp.Path, "memory.jsonl");
        await File.WriteAllTextAsync(mcp, """{"type":"entity","name":"Alice","entityType":"person","observations":["likes tea"]}""" + "\n");
        var data = Path.Combine(temp.Path, "data");

        var wrong = await CliProcess.RunAsync(["import", "--data", data, "--in", mcp]);
        wrong.ExitCode.Should().Be(1, wrong.ToString());
        wrong.Stderr.Should().Contain("Engram export header").And.Contain("--format mcp-memory");

        var mcpImport = await CliProcess.RunAsync(["import", "--data", data, "--format", "mcp-memory", mcp]);
        mcpImport.ExitCode.Should().Be(0, mcpImport.ToString());
        mcpImport.Stdout.Should().Contain("1 entities created");

        var neither = await CliProcess.RunAsync(["import", "--data", data]);
        neither.ExitCode.Should().Be(1);
        neither.Stderr.Should().Contain("--in FILE");

        var file = Path.Combine(temp.Path, "out.jsonl");
        (await CliProcess.RunAsync(["export", "--data", data, "--out", file])).ExitCode.Should().Be(0);
        var again = await CliProcess.RunAsync(["export", "--data", data, "--out", file]);
        again.ExitCode.Should().Be(1, again.ToString());
        again.Stderr.Should().Contain("--force");
        (await CliProcess.RunAsync(["export", "--data", data, "--out", file, "--force"])).ExitCode.Should().Be(0);
        Records(file).Should().ContainSingle().Which.Should().Contain("\"kind\":\"entity\"");

        // A target in a folder that does not exist: the message names the target, not the temporary file beside it.
        var nowhere = Path.Combine(temp.Path, "missing", "out.jsonl");
        var unwritable = await CliProcess.RunAsync(["export", "--data", data, "--out", nowhere]);
        unwritable.ExitCode.Should().Be(2, unwritable.ToString());
        unwritable.Stderr.Should().Contain($"cannot write '{nowhere}'").And.NotContain(".partial");
        File.Exists(nowhere + ".partial").Should().BeFalse();

        // A folder as the target is the user's mistake, said before any record is read.
        var folder = await CliProcess.RunAsync(["export", "--data", data, "--out", temp.Path]);
        folder.ExitCode.Should().Be(1, folder.ToString());
        folder.Stderr.Should().Be($"engram: '{temp.Path}' is a folder; give the file to write, such as {Path.Combine(temp.Path, "engram-export.jsonl")}\n");
        File.Exists(temp.Path + ".partial").Should().BeFalse();
    }

    [Fact]
    public async Task Only_unscoped_admin_keys_may_export()
    {
        await using var server = await EngramServer.StartAsync();
        var writer = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Write));
        (await writer.GetAsync("/v1/admin/export")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var scopedAdmin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin, new KeyScope("alice", null)));
        var refused = await scopedAdmin.GetAsync("/v1/admin/export");
        await refused.ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        var admin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin));
        (await admin.GetAsync("/v1/admin/export?all_tenants=maybe")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await admin.GetAsync("/v1/admin/export?tenant=x")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }
}
