using System.Text.Json;

namespace Engram.Tests.Cli;

/// <summary>The memory commands end to end, each test run once in process (--data) and once against a server (--server).</summary>
public sealed class CliMemoryCommandsTests
{
    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Add_get_update_history_delete_round_trip(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);

        var added = await engram.JsonAsync("add", "Alice prefers dark mode", "--type", "preference", "--tier", "short_term",
            "--importance", "0.8", "--valence", "-0.25", "--tag", "ui", "--tag", "prefs", "--metadata", "{\"project\":\"engram\",\"n\":2}",
            "--user", "alice", "--agent", "claude", "--session", "s1", "--namespace", "work", "--source", "chat", "--ttl", "3600");
        var id = added.GetProperty("id").GetString()!;
        added.GetProperty("duplicate").GetBoolean().Should().BeFalse();
        added.GetProperty("seq").GetInt64().Should().BePositive();
        added.GetProperty("content").GetString().Should().Be("Alice prefers dark mode");
        added.GetProperty("type").GetString().Should().Be("preference");
        added.GetProperty("tier").GetString().Should().Be("short_term");
        added.GetProperty("importance").GetDouble().Should().Be(0.8);
        added.GetProperty("valence").GetDouble().Should().Be(-0.25);
        added.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("ui", "prefs");
        added.GetProperty("metadata").GetProperty("project").GetString().Should().Be("engram");
        added.GetProperty("user_id").GetString().Should().Be("alice");
        added.GetProperty("agent_id").GetString().Should().Be("claude");
        added.GetProperty("session_id").GetString().Should().Be("s1");
        added.GetProperty("namespace").GetString().Should().Be("work");
        added.GetProperty("source").GetString().Should().Be("chat");
        var expires = added.GetProperty("expires_at").GetDateTimeOffset() - added.GetProperty("created_at").GetDateTimeOffset();
        expires.Should().BeCloseTo(TimeSpan.FromHours(1), TimeSpan.FromSeconds(5));
        added.GetProperty("version").GetInt64().Should().Be(1);

        // ULIDs are case-insensitive (Crockford base32): a lower-cased id still finds the memory.
        var fetched = await engram.JsonAsync("get", id.ToLowerInvariant());
        fetched.GetProperty("id").GetString().Should().Be(id);
        fetched.TryGetProperty("seq", out _).Should().BeFalse("get returns the memory, not a write result");
        fetched.GetProperty("content_hash").GetString().Should().Be(added.GetProperty("content_hash").GetString());

        var updated = await engram.JsonAsync("update", id, "--importance", "0.3", "--clear-valence", "--tag", "dark", "--clear-expiry", "--if-version", "1");
        updated.GetProperty("version").GetInt64().Should().Be(2);
        updated.GetProperty("importance").GetDouble().Should().Be(0.3);
        updated.GetProperty("valence").ValueKind.Should().Be(JsonValueKind.Null);
        updated.GetProperty("expires_at").ValueKind.Should().Be(JsonValueKind.Null);
        updated.GetProperty("source").GetString().Should().Be("chat", "fields not given stay as they are");
        updated.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("dark");
        updated.GetProperty("metadata").GetProperty("project").GetString().Should().Be("engram", "fields not given stay as they are");
        updated.GetProperty("content").GetString().Should().Be("Alice prefers dark mode");

        var deleted = await engram.JsonAsync("delete", id);
        deleted.GetProperty("deleted").GetInt32().Should().Be(1);
        deleted.GetProperty("seq").GetInt64().Should().BeGreaterThan(updated.GetProperty("seq").GetInt64());

        var gone = await engram.RunAsync("get", id);
        gone.ExitCode.Should().Be(1, gone.ToString());
        gone.Stderr.Should().Be($"engram: no memory with id '{id}'\n");

        var history = (await engram.JsonAsync("history", id)).GetProperty("items").EnumerateArray().ToList();
        history.Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "updated", "deleted");
        history.Select(h => h.GetProperty("version").GetInt64()).Should().Equal(1, 2, 2);
        var changes = history[1].GetProperty("changes");
        changes.GetProperty("importance").GetProperty("from").GetDouble().Should().Be(0.8);
        changes.GetProperty("importance").GetProperty("to").GetDouble().Should().Be(0.3);
        changes.TryGetProperty("metadata", out _).Should().BeFalse("metadata did not change");
        history[0].GetProperty("actor").GetString().Should().Be(mode is CliMode.InProcess or CliMode.InProcessPostgres ? "cli" : "http:cli");
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task List_filters_pages_and_follows_cursors(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        for (var i = 1; i <= 5; i++)
        {
            await engram.JsonAsync("add", $"note {i}", "--user", i <= 3 ? "alice" : "bob", "--tag", i % 2 == 0 ? "even" : "odd",
                "--metadata", $"{{\"n\":{i},\"team\":{{\"name\":\"t{i % 2}\"}}}}", "--tier", i == 5 ? "working" : "long_term");
        }

        static List<string?> Contents(JsonElement page) =>
            page.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).ToList();

        Contents(await engram.JsonAsync("list")).Should().Equal("note 5", "note 4", "note 3", "note 2", "note 1");
        Contents(await engram.JsonAsync("list", "--user", "alice")).Should().Equal("note 3", "note 2", "note 1");
        Contents(await engram.JsonAsync("list", "--user", "alice", "--tag", "odd")).Should().Equal("note 3", "note 1");
        Contents(await engram.JsonAsync("list", "--tag", "odd", "--tag", "even", "--tags-match", "any")).Should().HaveCount(5);
        Contents(await engram.JsonAsync("list", "--metadata", "n=4")).Should().Equal("note 4");
        Contents(await engram.JsonAsync("list", "--metadata", "team.name=t0")).Should().Equal("note 4", "note 2");
        Contents(await engram.JsonAsync("list", "--tier", "working")).Should().Equal("note 5");
        Contents(await engram.JsonAsync("list", "--created-after", "2000-01-01T00:00:00Z", "--created-before", "2000-01-02T00:00:00Z")).Should().BeEmpty();

        var first = await engram.JsonAsync("list", "--limit", "2");
        Contents(first).Should().Equal("note 5", "note 4");
        var cursor = first.GetProperty("next_cursor").GetString();
        cursor.Should().NotBeNullOrEmpty();
        var second = await engram.JsonAsync("list", "--limit", "2", "--cursor", cursor!, "--user", "alice");
        Contents(second).Should().Equal("note 3", "note 2");

        var all = await engram.JsonAsync("list", "--limit", "2", "--all");
        Contents(all).Should().Equal("note 5", "note 4", "note 3", "note 2", "note 1");
        all.GetProperty("next_cursor").ValueKind.Should().Be(JsonValueKind.Null);

        var table = await engram.RunAsync("list", "--limit", "2");
        table.ExitCode.Should().Be(0, table.ToString());
        table.Stdout.Should().Contain("ID").And.Contain("CONTENT").And.Contain("note 5").And.Contain("note 4").And.NotContain("note 3");
        table.Stdout.Should().Contain("2 memories").And.Contain($"--cursor {cursor}");

        var none = await engram.RunAsync("list", "--user", "nobody");
        none.Stdout.Should().Contain("No memories match.");
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Bulk_delete_needs_a_scope_and_confirm_and_deletes_only_that_scope(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        await engram.JsonAsync("add", "a1", "--user", "alice");
        await engram.JsonAsync("add", "a2", "--user", "alice");
        var bob = (await engram.JsonAsync("add", "b1", "--user", "bob")).GetProperty("id").GetString()!;

        var unconfirmed = await engram.RunAsync("delete", "--user", "alice");
        unconfirmed.ExitCode.Should().Be(1, unconfirmed.ToString());
        unconfirmed.Stderr.Should().StartWith("engram: ").And.Contain("--confirm");

        var unscoped = await engram.RunAsync("delete", "--type", "fact", "--confirm");
        unscoped.ExitCode.Should().Be(1, unscoped.ToString());
        unscoped.Stderr.Should().Contain("scope");

        var neither = await engram.RunAsync("delete");
        neither.ExitCode.Should().Be(1, neither.ToString());

        var result = await engram.JsonAsync("delete", "--user", "alice", "--confirm");
        result.GetProperty("deleted").GetInt32().Should().Be(2);

        var left = await engram.JsonAsync("list");
        left.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().Equal(bob);

        var text = await engram.RunAsync("delete", bob);
        text.ExitCode.Should().Be(0, text.ToString());
        text.Stdout.Should().Contain($"Deleted {bob}");
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Stats_count_by_type_and_tier(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        await engram.JsonAsync("add", "one", "--type", "preference");
        await engram.JsonAsync("add", "two", "--tier", "working");
        await engram.JsonAsync("add", "three");

        var stats = await engram.JsonAsync("stats");
        stats.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(3);
        stats.GetProperty("memories").GetProperty("by_type").GetProperty("fact").GetInt64().Should().Be(2);
        stats.GetProperty("memories").GetProperty("by_type").GetProperty("preference").GetInt64().Should().Be(1);
        stats.GetProperty("memories").GetProperty("by_tier").GetProperty("working").GetInt64().Should().Be(1);
        stats.GetProperty("last_seq").GetInt64().Should().Be(3);
        stats.GetProperty("store_bytes").GetInt64().Should().BePositive();

        var text = await engram.RunAsync("stats");
        text.ExitCode.Should().Be(0, text.ToString());
        text.Stdout.Should().Contain("memories:").And.Contain("3").And.Contain("fact 2").And.Contain("preference 1").And.Contain("working 1");
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Content_dash_reads_stdin_for_add_and_update(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        var added = await engram.RunWithStdinAsync("line one\nline two\n", "add", "-", "--json");
        added.ExitCode.Should().Be(0, added.ToString());
        var id = added.Json().GetProperty("id").GetString()!;
        added.Json().GetProperty("content").GetString().Should().Be("line one\nline two", "one trailing line break is dropped");

        var updated = await engram.RunWithStdinAsync("replaced\n", "update", id, "--content", "-", "--json");
        updated.ExitCode.Should().Be(0, updated.ToString());
        updated.Json().GetProperty("content").GetString().Should().Be("replaced");

        // '@' would start a response file in System.CommandLine's defaults; for memories it is just text.
        var mention = await engram.JsonAsync("add", "@alice likes tea");
        mention.GetProperty("content").GetString().Should().Be("@alice likes tea");

        // Text that looks like an option goes after "--"; every option must come before it.
        var dashText = await CliProcess.RunAsync(["add", "--json", .. engram.BackendArgs, "--", "-starts with a dash"]);
        dashText.ExitCode.Should().Be(0, dashText.ToString());
        dashText.Json().GetProperty("content").GetString().Should().Be("-starts with a dash");
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Human_output_shows_the_key_facts(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        var added = await engram.RunAsync("add", "Bob drinks green tea", "--user", "bob", "--tag", "drinks", "--importance", "0.7");
        added.ExitCode.Should().Be(0, added.ToString());
        var id = added.Stdout.Split(' ', '\n')[1];
        id.Should().HaveLength(26, added.Stdout);
        added.Stdout.Should().Contain("Remembered").And.Contain("Bob drinks green tea").And.Contain("user=bob")
            .And.Contain("drinks").And.Contain("0.7").And.Contain("long_term").And.Contain("version:");

        var again = await engram.RunAsync("add", "Bob  drinks green tea ", "--user", "bob");
        again.ExitCode.Should().Be(0, again.ToString());
        again.Stdout.Should().Contain($"Already remembered as {id}");

        var shown = await engram.RunAsync("get", id);
        shown.Stdout.Should().Contain(id).And.Contain("fact").And.Contain("created:").And.Contain("Bob drinks green tea");

        var updated = await engram.RunAsync("update", id, "--tier", "working");
        updated.Stdout.Should().Contain($"Updated {id}: now version 2");

        var history = await engram.RunAsync("history", id);
        history.ExitCode.Should().Be(0, history.ToString());
        history.Stdout.Should().Contain("created").And.Contain("updated").And.Contain("tier: long_term -> working");
    }
}
