using System.Text.Json;
using Engram.Tests.Cli;

namespace Engram.Tests.KeyValue;

/// <summary><c>engram kv …</c> end to end, once in process (--data) and once against a server (--server).</summary>
public sealed class KvCliTests
{
    [Fact]
    public async Task InProcess_ReadsTheOperatorDefaultTtlVariable_AndRefusesABadOne()
    {
        using var data = new Support.TempDirectory();
        var env = new Dictionary<string, string> { ["MEMORY_DEFAULT_TTL_SECONDS"] = "120" };
        var set = await CliProcess.RunAsync(["kv", "set", "k", "1", "--json", "--data", data.Path], environment: env);
        set.ExitCode.Should().Be(0, set.ToString());
        set.Json().GetProperty("ttl_seconds").GetInt64().Should().BeInRange(119, 120);

        var bad = await CliProcess.RunAsync(["kv", "set", "k2", "1", "--data", data.Path],
            environment: new Dictionary<string, string> { ["MEMORY_DEFAULT_TTL_SECONDS"] = "soon" });
        bad.ExitCode.Should().Be(1, bad.ToString());
        bad.Stderr.Should().Contain("invalid configuration");
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Set_get_incr_expire_list_cleanup_del_round_trip(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);

        var set = await engram.JsonAsync("kv", "set", "app:session:1", "{\"step\":2}", "--ttl", "60");
        set.GetProperty("created").GetBoolean().Should().BeTrue();
        set.GetProperty("key").GetString().Should().Be("app:session:1");
        set.GetProperty("ttl_seconds").GetInt64().Should().BeInRange(59, 60);

        var got = await engram.RunAsync("kv", "get", "app:session:1");
        got.ExitCode.Should().Be(0, got.ToString());
        got.Stdout.Trim().Should().Be("{\"step\":2}");

        (await engram.RunAsync("kv", "set", "word", "hello", "--ttl", "0")).ExitCode.Should().Be(0);
        (await engram.JsonAsync("kv", "get", "word")).GetProperty("value").GetString().Should().Be("hello");
        (await engram.JsonAsync("kv", "set", "n", "42", "--string")).GetProperty("created").GetBoolean().Should().BeTrue();
        (await engram.JsonAsync("kv", "get", "n")).GetProperty("value").ValueKind.Should().Be(JsonValueKind.String);

        var nx = await engram.RunAsync("kv", "set", "word", "again", "--nx");
        nx.ExitCode.Should().Be(1, nx.ToString());
        nx.Stderr.Should().Contain("exists");
        (await engram.RunAsync("kv", "set", "absent", "1", "--xx")).ExitCode.Should().Be(1);

        var incr = await engram.RunAsync("kv", "incr", "hits", "--by", "5");
        incr.ExitCode.Should().Be(0, incr.ToString());
        incr.Stdout.Trim().Should().Be("5");
        (await engram.JsonAsync("kv", "incr", "hits")).GetProperty("value").GetInt64().Should().Be(6);
        (await engram.RunAsync("kv", "incr", "word")).ExitCode.Should().Be(1);

        (await engram.JsonAsync("kv", "expire", "word", "30")).GetProperty("ttl_seconds").GetInt64().Should().BeInRange(29, 30);
        (await engram.RunAsync("kv", "expire", "missing", "30")).ExitCode.Should().Be(1);

        var page = await engram.JsonAsync("kv", "list", "--pattern", "*", "--limit", "2");
        page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()).Should().Equal("app:session:1", "hits");
        var cursor = page.GetProperty("next_cursor").GetString()!;
        var rest = await engram.JsonAsync("kv", "list", "--limit", "10", "--cursor", cursor);
        rest.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString()).Should().Equal("n", "word");
        var text = await engram.RunAsync("kv", "list", "--pattern", "app:*");
        text.Stdout.Should().Contain("app:session:1");

        (await engram.JsonAsync("kv", "cleanup", "[hn]*")).GetProperty("deleted").GetInt32().Should().Be(2);
        (await engram.RunAsync("kv", "del", "word")).ExitCode.Should().Be(0);
        var gone = await engram.RunAsync("kv", "get", "word");
        gone.ExitCode.Should().Be(1, gone.ToString());
        (await engram.RunAsync("kv", "set", "", "1")).ExitCode.Should().Be(1);

        // The deleted key's history stays readable, newest page first, each page oldest first.
        var history = await engram.JsonAsync("kv", "history", "word");
        history.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("event").GetString())
            .Should().Equal("created", "ttl_changed", "deleted");
        var newest = await engram.JsonAsync("kv", "history", "word", "--limit", "1");
        newest.GetProperty("items").EnumerateArray().Single().GetProperty("event").GetString().Should().Be("deleted");
        var older = await engram.JsonAsync("kv", "history", "word", "--limit", "5", "--cursor", newest.GetProperty("next_cursor").GetString()!);
        older.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "ttl_changed");
        var lines = await engram.RunAsync("kv", "history", "hits");
        lines.ExitCode.Should().Be(0, lines.ToString());
        lines.Stdout.Should().Contain("\tv2\tincremented\t").And.Contain("\t6\n").And.Contain("\tdeleted\t");
        (await engram.RunAsync("kv", "history", "never-set")).ExitCode.Should().Be(1);
    }

    [Theory]
    [InlineData(new[] { "kv", "incr", "k", "--by", "abc" }, "engram: --by must be a whole number (got 'abc')")]
    [InlineData(new[] { "kv", "expire", "k", "abc" }, "engram: seconds must be a whole number (got 'abc')")]
    [InlineData(new[] { "kv", "expire", "k", "-5" }, "engram kv expire -- \"-5\"")]
    [InlineData(new[] { "kv", "set" }, "engram: missing arguments <key> <value>\n")]
    public async Task A_bad_number_is_named_in_words_and_the_hint_names_the_whole_command(string[] args, string message)
    {
        // A probe (session 41): the parser's messages named .NET types (System.Nullable`1[System.Int64]), and the hint for
        // a value starting with '-' said "engram expire".
        using var data = new Support.TempDirectory();
        var result = await CliProcess.RunAsync([.. args, "--data", data.Path]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Contain(message).And.NotContain("System.");
    }

    [Fact]
    public async Task Restoring_a_file_that_is_not_a_backup_is_a_user_error()
    {
        using var data = new Support.TempDirectory();
        var junk = Path.Combine(data.Path, "junk.bak");
        await File.WriteAllTextAsync(junk, "this is not a backup");
        var result = await CliProcess.RunAsync(["restore", junk, "--data", Path.Combine(data.Path, "target")]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: ").And.NotContain("unexpected error");
    }
}
