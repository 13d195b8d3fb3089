using System.Net;
using System.Net.Http.Json;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>engram maintenance integrity | vacuum | analyze | reindex | prune through the real CLI (issue 14).</summary>
public sealed class MaintenanceCliTests
{
    /// <summary>Observations and facts, old and new, for alice and bob; returns their ids by name.</summary>
    private static async Task<Dictionary<string, string>> SeedAsync(string data)
    {
        await using var server = await EngramServer.StartAsync(data);
        var ids = new Dictionary<string, string>();
        var old = DateTimeOffset.UtcNow.AddDays(-200);
        foreach (var (name, type, created, user) in new (string, string, DateTimeOffset?, string)[]
        {
            ("old-observation-alice", "observation", old, "alice"),
            ("old-observation-bob", "observation", old, "bob"),
            ("new-observation-alice", "observation", null, "alice"),
            ("old-fact-alice", "fact", old, "alice"),
            ("new-fact-bob", "fact", null, "bob"),
        })
        {
            var body = new Dictionary<string, object> { ["content"] = "memory " + name, ["type"] = type, ["user_id"] = user };
            if (created is { } at)
            {
                body["created_at"] = at;
            }
            var response = await server.Client.PostAsJsonAsync("/v1/memories", body);
            response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
            ids[name] = (await response.JsonAsync()).GetProperty("id").GetString()!;
        }
        return ids;
    }

    private static async Task<List<string>> ListAsync(string data)
    {
        var listed = await CliProcess.RunAsync(["list", "--data", data, "--json"]);
        listed.ExitCode.Should().Be(0, listed.ToString());
        return [.. listed.Json().GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()!.Replace("memory ", "", StringComparison.Ordinal))];
    }

    [Fact]
    public async Task Prune_dry_run_deletes_nothing_and_prune_deletes_exactly_the_matching_memories_with_their_history()
    {
        using var temp = new TempDirectory();
        var ids = await SeedAsync(temp.Path);

        var dry = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--type", "observation", "--older-than", "90d", "--dry-run", "--json"]);
        dry.ExitCode.Should().Be(0, dry.ToString());
        dry.Json().GetProperty("matched").GetInt64().Should().Be(2);
        dry.Json().GetProperty("deleted").GetInt64().Should().Be(0);
        dry.Json().GetProperty("sample").EnumerateArray().Select(m => m.GetProperty("id").GetString())
            .Should().BeEquivalentTo(ids["old-observation-alice"], ids["old-observation-bob"]);
        (await ListAsync(temp.Path)).Should().HaveCount(5, "a dry run deletes nothing");

        var pruned = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--type", "observation", "--older-than", "90d"]);
        pruned.ExitCode.Should().Be(0, pruned.ToString());
        pruned.Stdout.Should().Contain("Deleted 2 memories");
        (await ListAsync(temp.Path)).Should().BeEquivalentTo("new-observation-alice", "old-fact-alice", "new-fact-bob");
        var history = await CliProcess.RunAsync(["history", ids["old-observation-bob"], "--data", temp.Path, "--json"]);
        history.ExitCode.Should().Be(0, history.ToString());
        history.Stdout.Should().Contain("\"deleted\"").And.Contain("cli:maintenance-prune");

        var byScope = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--user-id", "bob", "--json"]);
        byScope.ExitCode.Should().Be(0, byScope.ToString());
        byScope.Json().GetProperty("deleted").GetInt64().Should().Be(1);
        (await ListAsync(temp.Path)).Should().BeEquivalentTo("new-observation-alice", "old-fact-alice");

        // The search index follows the deletes (through the change log).
        var search = await CliProcess.RunAsync(["search", "memory", "--data", temp.Path, "--json"]);
        search.Json().GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString())
            .Should().BeEquivalentTo(ids["new-observation-alice"], ids["old-fact-alice"]);

        var nothing = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path]);
        nothing.ExitCode.Should().Be(1, nothing.ToString());
        nothing.Stderr.Should().Contain("say what to prune");
        var badAge = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--older-than", "soon"]);
        badAge.ExitCode.Should().Be(1);
        badAge.Stderr.Should().Contain("--older-than");
        (await ListAsync(temp.Path)).Should().HaveCount(2);
    }

    [Theory]
    [InlineData("5000000d")]
    [InlineData("99999999999d")]
    [InlineData("9999999999999999999w")]
    [InlineData("365001d")]
    public async Task An_older_than_past_the_longest_age_is_refused_as_too_large(string age)
    {
        using var temp = new TempDirectory();
        (await CliProcess.RunAsync(["add", "kept", "--data", temp.Path])).ExitCode.Should().Be(0);
        var result = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--older-than", age, "--dry-run"]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Contain("--older-than is too large (at most 365000 days").And.NotContain("unexpected error");

        var longest = await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--older-than", "365000d", "--dry-run"]);
        longest.ExitCode.Should().Be(0, longest.ToString());
        longest.Stdout.Should().Contain("0 memories would be deleted");
    }

    [Fact]
    public async Task Integrity_vacuum_analyze_and_reindex_succeed_on_a_sound_store()
    {
        using var temp = new TempDirectory();
        await SeedAsync(temp.Path);
        (await CliProcess.RunAsync(["maintenance", "prune", "--data", temp.Path, "--user-id", "alice"])).ExitCode.Should().Be(0);

        var integrity = await CliProcess.RunAsync(["maintenance", "integrity", "--data", temp.Path, "--json"]);
        integrity.ExitCode.Should().Be(0, integrity.ToString());
        integrity.Json().GetProperty("ok").GetBoolean().Should().BeTrue();

        var vacuum = await CliProcess.RunAsync(["maintenance", "vacuum", "--data", temp.Path, "--json"]);
        vacuum.ExitCode.Should().Be(0, vacuum.ToString());
        vacuum.Json().GetProperty("bytes_after").GetInt64().Should().BeGreaterThan(0).And.BeLessThanOrEqualTo(vacuum.Json().GetProperty("bytes_before").GetInt64());

        var analyze = await CliProcess.RunAsync(["maintenance", "analyze", "--data", temp.Path]);
        analyze.ExitCode.Should().Be(0, analyze.ToString());

        var reindex = await CliProcess.RunAsync(["maintenance", "reindex", "--data", temp.Path]);
        reindex.ExitCode.Should().Be(0, reindex.ToString());
        reindex.Stdout.Should().Contain("REINDEX").And.Contain("Rebuilt the indexes: 2 memories");
        File.Exists(Path.Combine(temp.Path, "engram.index")).Should().BeTrue();

        var after = await CliProcess.RunAsync(["maintenance", "integrity", "--data", temp.Path]);
        after.ExitCode.Should().Be(0, after.ToString());
        after.Stdout.Should().Contain("index snapshot is whole");
        (await ListAsync(temp.Path)).Should().HaveCount(2);

        var missing = await CliProcess.RunAsync(["maintenance", "vacuum", "--data", Path.Combine(temp.Path, "nowhere")]);
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Contain("no Engram database");
    }

    [Fact]
    public async Task Integrity_detects_a_corrupted_database_and_a_damaged_index_snapshot()
    {
        using var temp = new TempDirectory();
        await SeedAsync(temp.Path);
        (await CliProcess.RunAsync(["maintenance", "reindex", "--data", temp.Path])).ExitCode.Should().Be(0);

        var snapshot = Path.Combine(temp.Path, "engram.index");
        var bytes = await File.ReadAllBytesAsync(snapshot);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(snapshot, bytes);
        var damagedSnapshot = await CliProcess.RunAsync(["maintenance", "integrity", "--data", temp.Path, "--json"]);
        damagedSnapshot.ExitCode.Should().Be(2, damagedSnapshot.ToString());
        damagedSnapshot.Json().GetProperty("problems")[0].GetString().Should().Contain("checksum");
        File.Delete(snapshot);

        // Overwrite every page but the first (the header) with garbage: SQLite's own check must fail.
        var database = Path.Combine(temp.Path, "engram.db");
        var file = await File.ReadAllBytesAsync(database);
        file.Length.Should().BeGreaterThan(8192);
        var garbage = new Random(14);
        for (var i = 4096; i < file.Length; i += 512)
        {
            garbage.NextBytes(file.AsSpan(i, 64));
        }
        await File.WriteAllBytesAsync(database, file);
        var corrupted = await CliProcess.RunAsync(["maintenance", "integrity", "--data", temp.Path]);
        corrupted.ExitCode.Should().Be(2, corrupted.ToString());
        corrupted.Stderr.Should().Contain("engram: ").And.Contain("restore the newest backup");
    }
}
