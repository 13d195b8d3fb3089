using System.Diagnostics;
using System.Net;
using System.Text;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Storage.Postgres;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Cli;
using Engram.Tests.Operations;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// <c>engram migrate</c> (issue 15, "Moving data"), the real executable between a real SQLite folder and a
/// real PostgreSQL database: the round trip keeps every record field by field and the API keys work on the
/// target; a run killed mid-copy is resumed exactly; a target holding other data is refused; a count that
/// does not match fails the run with the difference.
/// </summary>
public sealed class MigrateTests
{
    private static List<string> Records(string file) => [.. File.ReadAllLines(file).Skip(1)];

    private static async Task<List<string>> ExportAsync(string folder, string location)
    {
        var file = Path.Combine(folder, $"export-{Guid.NewGuid():N}.jsonl");
        var result = await CliProcess.RunAsync(Core.Storage.StoreFactory.IsPostgres(location)
            ? ["export", "--store", location, "--out", file, "--json"]
            : ["export", "--data", location, "--out", file, "--json"]);
        result.ExitCode.Should().Be(0, result.ToString());
        return Records(file);
    }

    [Fact]
    public async Task Sqlite_to_postgres_and_back_keeps_every_record_field_by_field_and_the_api_keys_keep_working()
    {
        using var temp = new TempDirectory();
        var source = Path.Combine(temp.Path, "source");
        var (server, key) = await ExportImportTests.SeedAsync(source);
        await server.DisposeAsync();
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using (var store = SqliteMemoryStore.Open(source))
        {
            await ((Core.Storage.Transfer.IStoreTransfer)store).SetMetaAsync(Core.Operations.StoreMetaTransfer.UiDataProtectionPrefix + "k1", "<key id=\"k1\" />");
        }

        var there = await CliProcess.RunAsync(["migrate", "--from", source, "--to", url, "--json"]);
        there.ExitCode.Should().Be(0, there.ToString());
        var report = there.Json();
        report.GetProperty("ok").GetBoolean().Should().BeTrue();
        report.GetProperty("resumed").GetBoolean().Should().BeFalse();
        report.GetProperty("copied").GetInt64().Should().Be(10 + 6 + 4 + 2);
        report.GetProperty("api_keys_copied").GetInt32().Should().Be(1);
        report.GetProperty("differences").GetArrayLength().Should().Be(0);
        var counts = report.GetProperty("target_counts").GetProperty("globex");
        counts.GetProperty("memories").GetInt64().Should().Be(5);
        counts.GetProperty("memory_history").GetInt64().Should().Be(7, "two of the five were updated");
        counts.GetProperty("kv_history").GetInt64().Should().Be(4, "config was set twice, counter incremented once, app:task:1 set once");

        var back = Path.Combine(temp.Path, "back");
        var returned = await CliProcess.RunAsync(["migrate", "--from", url, "--to", back, "--json"]);
        returned.ExitCode.Should().Be(0, returned.ToString());
        foreach (var location in new[] { url, back })
        {
            await using var store = Core.Storage.StoreFactory.Open(location);
            (await ((Core.Storage.Transfer.IStoreTransfer)store).GetMetaAsync(Core.Operations.StoreMetaTransfer.UiDataProtectionPrefix + "k1"))
                .Should().Be("<key id=\"k1\" />", "the web UI's login keys travel with a migration");
        }

        // Every record of every kind, every field (ids, versions, times, TTLs, tags, metadata, history, chains, observations).
        var original = await ExportAsync(temp.Path, source);
        original.Should().HaveCount(22);
        (await ExportAsync(temp.Path, url)).Should().Equal(original);
        (await ExportAsync(temp.Path, back)).Should().Equal(original);

        // The same through the stores' own reads, independent of the export code.
        await using (var sqlite = SqliteMemoryStore.Open(source))
        await using (var postgres = PostgresMemoryStore.Open(url))
        {
            foreach (var tenant in new[] { "default", "globex" })
            {
                var caller = Caller.System("test", tenant);
                var memories = (await sqlite.ListAsync(caller, new MemoryFilter(), 100, null)).Items;
                memories.Should().HaveCount(5);
                foreach (var memory in memories)
                {
                    var copy = await postgres.GetAsync(caller, memory.Id);
                    copy.Should().BeEquivalentTo(memory, o => o.ComparingByMembers<System.Text.Json.JsonElement>().Using<System.Text.Json.JsonElement>(
                        c => c.Subject.GetRawText().Should().Be(c.Expectation.GetRawText())).WhenTypeIs<System.Text.Json.JsonElement>());
                    // Seq is each store's own change-log position; everything else is the source's.
                    (await postgres.GetHistoryAsync(caller, memory.Id)).Should().BeEquivalentTo(await sqlite.GetHistoryAsync(caller, memory.Id),
                        o => o.Excluding(m => m.Name == "Seq").Using<System.Text.Json.JsonElement>(c => c.Subject.GetRawText().Should().Be(c.Expectation.GetRawText())).WhenTypeIs<System.Text.Json.JsonElement>());
                }
                (await postgres.ReadGraphAsync(caller, includeInvalid: true)).Should().BeEquivalentTo(await sqlite.ReadGraphAsync(caller, includeInvalid: true));
            }
        }

        // The source's API key works on a server of the target.
        await using var target = await EngramServer.StartAsync(url);
        var listed = await target.ClientWithKey(key).GetAsync("/v1/memories?limit=50");
        listed.StatusCode.Should().Be(HttpStatusCode.OK, await listed.Content.ReadAsStringAsync());
        (await listed.JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(5);
    }

    /// <summary>An export file of <paramref name="memories"/> memories (each with a two-entry history) and as many keys.</summary>
    private static string LargeExport(string folder, int memories)
    {
        var file = Path.Combine(folder, "large.jsonl");
        var text = new StringBuilder();
        text.Append("{\"kind\":\"header\",\"format\":\"engram-export\",\"format_version\":1,\"engram_version\":\"0\",\"schema_version\":11,")
            .Append("\"created_at\":\"2026-01-01T00:00:00.000Z\",\"tenant\":null,\"last_seq\":0,\"counts\":{\"memories\":").Append(memories)
            .Append(",\"kv\":").Append(memories).Append(",\"entities\":0,\"relations\":0}}\n");
        for (var i = 0; i < memories; i++)
        {
            text.Append("{\"kind\":\"memory\",\"tenant\":\"").Append(i % 3 == 0 ? "acme" : "default").Append("\",\"id\":\"01JQ").Append(i.ToString("D22")) // a ULID, as Engram makes ids
                .Append("\",\"content\":\"memory number ").Append(i).Append("\",\"content_hash\":\"h").Append(i)
                .Append("\",\"type\":\"fact\",\"tier\":\"long_term\",\"importance\":0.5,\"valence\":null,\"tags\":[\"t").Append(i % 7)
                .Append("\"],\"metadata\":{\"i\":").Append(i).Append("},\"entities\":[],\"user_id\":null,\"agent_id\":null,\"session_id\":null,\"namespace\":null,\"source\":null,")
                .Append("\"created_at\":\"2026-01-01T00:00:00.000Z\",\"updated_at\":\"2026-01-02T00:00:00.000Z\",\"last_accessed_at\":null,\"access_count\":0,")
                .Append("\"expires_at\":null,\"valid_from\":null,\"valid_to\":null,\"version\":2,\"history\":[")
                .Append("{\"event\":\"created\",\"actor\":\"a\",\"at\":\"2026-01-01T00:00:00.000Z\",\"version\":1,\"changes\":{}},")
                .Append("{\"event\":\"updated\",\"actor\":\"a\",\"at\":\"2026-01-02T00:00:00.000Z\",\"version\":2,\"changes\":{\"content\":1}}]}\n");
        }
        for (var i = 0; i < memories; i++)
        {
            text.Append("{\"kind\":\"kv\",\"tenant\":\"default\",\"key\":\"k").Append(i).Append("\",\"value\":").Append(i)
                .Append(",\"expires_at\":null,\"version\":1,\"created_at\":\"2026-01-01T00:00:00.000Z\",\"updated_at\":\"2026-01-01T00:00:00.000Z\",\"history\":[")
                .Append("{\"event\":\"created\",\"actor\":\"a\",\"at\":\"2026-01-01T00:00:00.000Z\",\"version\":1,\"value\":").Append(i).Append(",\"expires_at\":null}]}\n");
        }
        File.WriteAllText(file, text.ToString());
        return file;
    }

    private static async Task<long> CountAsync(string url, string table)
    {
        var builder = new NpgsqlConnectionStringBuilder(PostgresUrl.ToConnectionString(url)) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string url, string sql)
    {
        var builder = new NpgsqlConnectionStringBuilder(PostgresUrl.ToConnectionString(url)) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_migration_killed_mid_copy_resumes_on_the_next_run_and_the_result_is_exact()
    {
        const int Memories = 6000;
        using var temp = new TempDirectory();
        var source = Path.Combine(temp.Path, "source");
        var seeded = await CliProcess.RunAsync(["import", "--data", source, "--in", LargeExport(temp.Path, Memories), "--json"]);
        seeded.ExitCode.Should().Be(0, seeded.ToString());
        var url = await PostgresServer.NewDatabaseUrlAsync();

        // Kill -9 the migration once some batches are committed and before it ends.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "engram.dll"), "migrate", "--from", source, "--to", url, "--json" })
        {
            start.ArgumentList.Add(arg);
        }
        using (var child = Process.Start(start)!)
        {
            var waited = Stopwatch.StartNew();
            while (await CountAsync(url, "memories") == 0 && !child.HasExited && waited.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(10);
            }
            child.HasExited.Should().BeFalse("the migration must still run when it is killed (make the store larger if the machine copies it faster)");
            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync();
        }
        var copiedBefore = await CountAsync(url, "memories");
        copiedBefore.Should().BeInRange(1, Memories - 1);
        (await CountAsync(url, "kv_entries")).Should().Be(0, "keys come after memories");

        var resumed = await CliProcess.RunAsync(["migrate", "--from", source, "--to", url, "--json"]);
        resumed.ExitCode.Should().Be(0, resumed.ToString());
        var report = resumed.Json();
        report.GetProperty("resumed").GetBoolean().Should().BeTrue();
        report.GetProperty("kinds").GetProperty("memory").GetProperty("skipped").GetInt64().Should().Be(copiedBefore);
        report.GetProperty("kinds").GetProperty("memory").GetProperty("copied").GetInt64().Should().Be(Memories - copiedBefore);
        report.GetProperty("differences").GetArrayLength().Should().Be(0);
        (await CountAsync(url, "memories")).Should().Be(Memories);
        (await CountAsync(url, "memory_history")).Should().Be(2 * Memories, "no history row was copied twice");
        (await ExportAsync(temp.Path, url)).Should().Equal(await ExportAsync(temp.Path, source));
    }

    [Fact]
    public async Task A_target_with_other_data_is_refused_unless_forced_and_a_count_mismatch_fails_with_the_difference()
    {
        using var temp = new TempDirectory();
        var source = Path.Combine(temp.Path, "source");
        (await CliProcess.RunAsync(["add", "the source's memory", "--data", source, "--json"])).ExitCode.Should().Be(0);
        (await CliProcess.RunAsync(["kv", "set", "k", "1", "--data", source])).ExitCode.Should().Be(0);
        var url = await PostgresServer.NewDatabaseUrlAsync();
        (await CliProcess.RunAsync(["add", "already in the target", "--store", url, "--json"])).ExitCode.Should().Be(0);

        var refused = await CliProcess.RunAsync(["migrate", "--from", source, "--to", url]);
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Stderr.Should().Contain("holds data already").And.Contain("--force");
        (await CountAsync(url, "memories")).Should().Be(1, "nothing was copied");

        var forced = await CliProcess.RunAsync(["migrate", "--from", source, "--to", url, "--force", "--json"]);
        forced.ExitCode.Should().Be(0, forced.ToString());
        forced.Json().GetProperty("merged").GetBoolean().Should().BeTrue();
        (await CountAsync(url, "memories")).Should().Be(2);

        // SQLite to SQLite, then a history row lost on the target: the next run finds it and says which count differs.
        var copy = Path.Combine(temp.Path, "copy");
        (await CliProcess.RunAsync(["migrate", "--from", source, "--to", copy])).ExitCode.Should().Be(0);
        using (var connection = SqliteConnection.Open(Path.Combine(copy, SqliteMemoryStore.FileName), create: false))
        {
            connection.Execute("DELETE FROM memory_history");
        }
        var mismatch = await CliProcess.RunAsync(["migrate", "--from", source, "--to", copy]);
        mismatch.ExitCode.Should().Be(1, mismatch.ToString());
        mismatch.Stderr.Should().Contain("memory_history source 1, target 0");

        await ExecuteAsync(url, "DELETE FROM kv_history");
        var json = await CliProcess.RunAsync(["migrate", "--from", source, "--to", url, "--force", "--json"]);
        json.ExitCode.Should().Be(1, json.ToString());
        var difference = json.Json().GetProperty("differences")[0];
        difference.GetProperty("kind").GetString().Should().Be("kv_history");
        difference.GetProperty("source").GetInt64().Should().Be(1);
        difference.GetProperty("target").GetInt64().Should().Be(0);
    }
}
