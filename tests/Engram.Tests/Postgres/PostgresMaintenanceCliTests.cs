using System.Net;
using System.Net.Http.Json;
using Engram.Tests.Cli;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Postgres;

/// <summary>
/// engram maintenance integrity | vacuum | analyze | reindex | prune and engram reindex on a PostgreSQL store
/// (--store), through the real CLI against a real server: what the SQLite tests (MaintenanceCliTests) show for a data folder.
/// </summary>
public sealed class PostgresMaintenanceCliTests
{
    /// <summary>A database with five memories (two old observations) written by a server; returns its name.</summary>
    private static async Task<(PostgresServer Postgres, string Database)> SeedAsync()
    {
        var postgres = await PostgresServer.GetAsync();
        var database = await postgres.CreateDatabaseAsync();
        await using var server = await EngramServer.StartAsync(postgres.Url(database));
        var old = DateTimeOffset.UtcNow.AddDays(-200);
        foreach (var (name, type, created) in new (string, string, DateTimeOffset?)[]
        {
            ("old observation one", "observation", old), ("old observation two", "observation", old), ("new observation", "observation", null),
            ("old fact", "fact", old), ("new fact", "fact", null),
        })
        {
            var body = new Dictionary<string, object> { ["content"] = "memory " + name, ["type"] = type };
            if (created is { } at)
            {
                body["created_at"] = at;
            }
            var response = await server.Client.PostAsJsonAsync("/v1/memories", body);
            response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        }
        (await server.Client.PutAsJsonAsync("/v1/kv/k1", new { value = 1 })).EnsureSuccessStatusCode();
        return (postgres, database);
    }

    private static async Task ExecuteAsync(PostgresServer postgres, string database, string sql)
    {
        await using var connection = new NpgsqlConnection(postgres.ConnectionString(database) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Integrity_vacuum_analyze_reindex_and_prune_work_on_a_postgres_store()
    {
        var (postgres, database) = await SeedAsync();
        var url = postgres.Url(database);
        using var instance = new TempDirectory();

        var integrity = await CliProcess.RunAsync(["maintenance", "integrity", "--store", url, "--json"]);
        integrity.ExitCode.Should().Be(0, integrity.ToString());
        integrity.Json().GetProperty("ok").GetBoolean().Should().BeTrue();
        var checkedItems = integrity.Json().GetProperty("checked").EnumerateArray().Select(c => c.GetString()).ToList();
        checkedItems.Should().Contain(c => c!.StartsWith("change log: 6 entries", StringComparison.Ordinal), "five memories and one key were logged");
        checkedItems.Should().Contain(c => c!.StartsWith("amcheck: not installed", StringComparison.Ordinal));

        // With amcheck installed (an operator's choice; Engram never installs extensions) every B-tree index is verified.
        await ExecuteAsync(postgres, database, "CREATE EXTENSION amcheck");
        var withAmcheck = await CliProcess.RunAsync(["maintenance", "integrity", "--store", url]);
        withAmcheck.ExitCode.Should().Be(0, withAmcheck.ToString());
        withAmcheck.Stdout.Should().MatchRegex(@"amcheck: [1-9]\d* B-tree indexes verified");

        var vacuum = await CliProcess.RunAsync(["maintenance", "vacuum", "--store", url, "--json"]);
        vacuum.ExitCode.Should().Be(0, vacuum.ToString());
        vacuum.Json().GetProperty("bytes_before").GetInt64().Should().BeGreaterThan(0);
        var full = await CliProcess.RunAsync(["maintenance", "vacuum", "--full", "--store", url]);
        full.ExitCode.Should().Be(0, full.ToString());
        full.Stdout.Should().StartWith("Vacuumed: ");

        var analyze = await CliProcess.RunAsync(["maintenance", "analyze", "--store", url]);
        analyze.ExitCode.Should().Be(0, analyze.ToString());

        // reindex rebuilds PostgreSQL's indexes and this instance's search indexes, saving its snapshot in its --data folder.
        var reindex = await CliProcess.RunAsync(["maintenance", "reindex", "--store", url, "--data", instance.Path]);
        reindex.ExitCode.Should().Be(0, reindex.ToString());
        reindex.Stdout.Should().Contain("REINDEX TABLE CONCURRENTLY").And.Contain("Rebuilt the indexes: 5 memories");
        File.Exists(Path.Combine(instance.Path, "engram.index")).Should().BeTrue();
        var snapshotChecked = await CliProcess.RunAsync(["maintenance", "integrity", "--store", url, "--data", instance.Path, "--json"]);
        snapshotChecked.ExitCode.Should().Be(0, snapshotChecked.ToString());
        snapshotChecked.Json().GetProperty("snapshot_checked").GetBoolean().Should().BeTrue();

        // engram reindex alone, from DATABASE_URL, without a folder: rebuilt and said that no snapshot was saved.
        var fromEnvironment = await CliProcess.RunAsync(["reindex", "--json"], environment: new Dictionary<string, string> { ["DATABASE_URL"] = url });
        fromEnvironment.ExitCode.Should().Be(0, fromEnvironment.ToString());
        fromEnvironment.Json().GetProperty("memories").GetInt32().Should().Be(5);
        fromEnvironment.Json().GetProperty("snapshot").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);

        var prune = await CliProcess.RunAsync(["maintenance", "prune", "--store", url, "--type", "observation", "--older-than", "90d", "--json"]);
        prune.ExitCode.Should().Be(0, prune.ToString());
        prune.Json().GetProperty("deleted").GetInt64().Should().Be(2);
        var listed = await CliProcess.RunAsync(["list", "--store", url, "--json"]);
        listed.Json().GetProperty("items").GetArrayLength().Should().Be(3);

        var afterPrune = await CliProcess.RunAsync(["maintenance", "integrity", "--store", url]);
        afterPrune.ExitCode.Should().Be(0, afterPrune.ToString());
        afterPrune.Stdout.Should().Contain("change log: 8 entries, contiguous up to seq 8");
    }

    [Fact]
    public async Task Integrity_finds_a_gap_in_the_change_log_a_wrong_head_wrong_counts_and_a_foreign_snapshot()
    {
        var (postgres, database) = await SeedAsync();
        var url = postgres.Url(database);

        // A snapshot of another store, where this instance's snapshot should be.
        using var foreign = new TempDirectory();
        await (await EngramServer.StartAsync(foreign.Path)).DisposeAsync(); // writes its snapshot on shutdown
        File.Exists(Path.Combine(foreign.Path, "engram.index")).Should().BeTrue();

        await ExecuteAsync(postgres, database, "DELETE FROM changelog WHERE seq = 3");
        await ExecuteAsync(postgres, database, "INSERT INTO row_count_deltas(tenant, kind, tier, type, n) SELECT DISTINCT tenant, 'memory', tier, type, 4 FROM memories WHERE type = 'fact'");
        var damaged = await CliProcess.RunAsync(["maintenance", "integrity", "--store", url, "--data", foreign.Path, "--json"]);
        damaged.ExitCode.Should().Be(2, damaged.ToString());
        var problems = damaged.Json().GetProperty("problems").EnumerateArray().Select(p => p.GetString()!).ToList();
        problems.Should().Contain(p => p.Contains("1 entry missing between seq 1 and 6", StringComparison.Ordinal));
        problems.Should().Contain(p => p.Contains("memories of tier", StringComparison.Ordinal) && p.Contains("type fact: counted 6, stored 2", StringComparison.Ordinal));
        problems.Should().Contain(p => p.StartsWith("index snapshot ", StringComparison.Ordinal));

        await ExecuteAsync(postgres, database, "UPDATE log_head SET seq = 4");
        var head = await CliProcess.RunAsync(["maintenance", "integrity", "--store", url]);
        head.ExitCode.Should().Be(2, head.ToString());
        head.Stderr.Should().Contain("log_head says seq 4, the newest entry is 6").And.Contain("the store is inconsistent");
    }

    [Fact]
    public async Task Store_and_data_options_are_checked()
    {
        var notPostgres = await CliProcess.RunAsync(["maintenance", "analyze", "--store", "/var/lib/engram"]);
        notPostgres.ExitCode.Should().Be(1, notPostgres.ToString());
        notPostgres.Stderr.Should().Contain("--store must be a postgres://");

        var url = await PostgresServer.NewDatabaseUrlAsync();
        var noFolder = await CliProcess.RunAsync(["reindex", "--store", url, "--data", "/nonexistent/instance"]);
        noFolder.ExitCode.Should().Be(1, noFolder.ToString());
        noFolder.Stderr.Should().Contain("/nonexistent/instance");
    }
}
