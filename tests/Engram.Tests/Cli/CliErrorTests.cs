using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>Exit codes and messages: 1 for what the user can fix, 2 for what Engram or the machine failed at; both backends alike.</summary>
public sealed class CliErrorTests
{
    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    public async Task User_errors_exit_1_with_one_message_on_stderr(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        var id = (await engram.JsonAsync("add", "a fact", "--user", "u")).GetProperty("id").GetString()!;

        await ShouldFailAsync(engram.RunAsync("add", "x", "--importance", "2"), "engram: --importance must be between 0 and 1 (got 2)\n");
        await ShouldFailAsync(engram.RunAsync("add", "   "), "engram: content must not be empty or only white space\n");
        await ShouldFailAsync(engram.RunAsync("add", "x", "--metadata", "[1,2]"), "engram: --metadata must be a JSON object (got array)\n");
        await ShouldFailAsync(engram.RunAsync("add", "x", "--metadata", "{oops"), "engram: --metadata is not valid JSON");
        await ShouldFailAsync(engram.RunAsync("get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), "engram: no memory with id '01ARZ3NDEKTSV4RRFFQ69G5FAV'\n");
        await ShouldFailAsync(engram.RunAsync("update", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--importance", "0.1"), "engram: no memory with id");
        await ShouldFailAsync(engram.RunAsync("history", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), "engram: no memory with id");
        await ShouldFailAsync(engram.RunAsync("add", "a  fact", "--user", "u", "--on-duplicate", "reject"),
            $"engram: a memory with the same content already exists in this scope: {id}\n");
        await ShouldFailAsync(engram.RunAsync("update", id, "--importance", "0.9", "--if-version", "7"),
            $"engram: memory '{id}' is at version 1, not 7; fetch it again and retry\n");
        await ShouldFailAsync(engram.RunAsync("update", id), "engram: nothing to update");
        await ShouldFailAsync(engram.RunAsync("update", id, "--valence", "0.5", "--clear-valence"), "engram: give --valence or --clear-valence, not both\n");
        await ShouldFailAsync(engram.RunAsync("list", "--limit", "0"), "engram: --limit must be between 1 and 1000 (got 0)\n");
        await ShouldFailAsync(engram.RunAsync("list", "--limit", "99999999999999"), "engram: --limit is out of range (got 99999999999999)\n");
        await ShouldFailAsync(engram.RunAsync("search", "fact", "--k", "-99999999999999999999999"), "engram: --k is out of range (got -99999999999999999999999)\n");
        await ShouldFailAsync(engram.RunAsync("kv", "list", "--limit", "ten"), "engram: --limit must be a whole number (got 'ten')\n");
        await ShouldFailAsync(engram.RunAsync("list", "--tier", "forever"), "engram: --tier must be one of working, short_term, long_term (got 'forever')\n");
        await ShouldFailAsync(engram.RunAsync("list", "--cursor", "not-a-cursor"), "engram: --cursor is not one this server handed out");
        await ShouldFailAsync(engram.RunAsync("list", "--created-after", "yesterday"), "engram: --created-after must be an ISO 8601 timestamp");

        // Nothing was changed by the failed commands.
        var after = await engram.JsonAsync("get", id);
        after.GetProperty("version").GetInt64().Should().Be(1);
        (await engram.JsonAsync("stats")).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(1);
    }

    [Fact]
    public async Task Both_backends_print_the_same_error_messages()
    {
        await using var local = await CliBackend.StartAsync(CliMode.InProcess);
        await using var remote = await CliBackend.StartAsync(CliMode.Server);
        string[][] failing =
        [
            ["add", "x", "--valence", "-3"],
            ["add", "x", "--tag", new string('t', 65)],
            ["add", "x", "--user", " padded "],
            ["add", "x", "--ttl", "0"],
            ["get", "missing"],
            ["history", "a/b"],
            ["delete", ".."],
            ["list", "--limit", "5000"],
        ];
        foreach (var args in failing)
        {
            var a = await local.RunAsync(args);
            var b = await remote.RunAsync(args);
            a.ExitCode.Should().Be(1, a.ToString());
            b.ExitCode.Should().Be(1, b.ToString());
            b.Stderr.Should().Be(a.Stderr, string.Join(' ', args));
            a.Stdout.Should().BeEmpty();
            b.Stdout.Should().BeEmpty();
        }
    }

    [Fact]
    public async Task Configured_limits_hold_in_process_as_on_the_server()
    {
        await using var server = await Support.EngramServer.StartAsync(configure: o => o.Limits.MaxContentChars = 10);
        using var folder = new TempDirectory();
        var tooLong = new[] { "add", "twelve chars" };

        var remote = await CliProcess.RunAsync([.. tooLong, "--server", server.BaseAddress.ToString()]);
        var local = await CliProcess.RunAsync([.. tooLong, "--data", folder.Path],
            environment: new Dictionary<string, string> { ["Engram__Limits__MaxContentChars"] = "10" });

        remote.ExitCode.Should().Be(1, remote.ToString());
        remote.Stderr.Should().Be("engram: content has 12 characters; the limit is 10\n");
        local.ExitCode.Should().Be(1, local.ToString());
        local.Stderr.Should().Be(remote.Stderr);
    }

    [Theory]
    [InlineData("postgres://", "Engram:Store (DATABASE_URL, --store): the store URL is not a valid postgres://")]
    [InlineData("postgres://u@db.example/engram?sslmode=bogus", "Engram:Store (DATABASE_URL, --store): the store URL's option sslmode has a value")]
    [InlineData("garbage", "Engram:Store (DATABASE_URL, --store) must be a postgres://")]
    public async Task Serve_with_a_DATABASE_URL_that_cannot_be_read_is_a_setting_to_fix_exit_1(string url, string expected)
    {
        // "postgres://" was a store failure (exit 2) where "garbage" was a setting (exit 1); neither touches the folder.
        using var folder = new TempDirectory();
        var result = await CliProcess.RunAsync(["serve", "--urls", $"http://127.0.0.1:{Support.EngramServer.FreePort()}"], workingDirectory: folder.Path,
            environment: new Dictionary<string, string> { ["DATABASE_URL"] = url });
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: invalid configuration: " + expected);
        Directory.EnumerateFileSystemEntries(folder.Path).Should().BeEmpty("nothing starts before the settings are checked");
    }

    [Theory]
    [InlineData("Engram__KeyValue__Durability", "Fast", "Engram:KeyValue:Durability (Engram__KeyValue__Durability) must be one of Full, Relaxed (got 'Fast')")]
    [InlineData("TOP_K_RETRIEVAL", "0", "Engram:Search:TopK (TOP_K_RETRIEVAL) must be between 1 and Engram:Search:MaxK, 100 (got 0)")]
    [InlineData("MEMORY_DEFAULT_TTL_SECONDS", "soon", "Engram:KeyValue:DefaultTtlSeconds (MEMORY_DEFAULT_TTL_SECONDS) must be a whole number (got 'soon')")]
    [InlineData("READONLY_MODE", "maybe", "Engram:ReadOnly (READONLY_MODE) must be true or false (got 'maybe')")]
    [InlineData("SEMANTIC_WEIGHT", "abc", "Engram:Search:SemanticWeight (SEMANTIC_WEIGHT) must be a number (got 'abc')")]
    public async Task Serve_with_a_bad_setting_says_which_and_exits_1_without_a_stack_trace(string variable, string value, string expected)
    {
        using var folder = new TempDirectory();
        var result = await CliProcess.RunAsync(["serve", "--data", folder.Path, "--urls", $"http://127.0.0.1:{Support.EngramServer.FreePort()}"],
            environment: new Dictionary<string, string> { [variable] = value });
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: invalid configuration: ").And.Contain(expected).And.NotContain("   at ");
    }

    [Theory]
    [InlineData("add")]
    [InlineData("add", "x", "--no-such-flag")]
    [InlineData("add", "--tpye", "fact")]
    [InlineData("add", "x", "--importance", "lots")]
    [InlineData("add", "x", "--on-duplicate", "merge")]
    [InlineData("update", "ID", "--user", "u")]
    [InlineData("frobnicate")]
    [InlineData()]
    public async Task Bad_flags_exit_1_with_an_engram_message(params string[] args)
    {
        using var folder = new TempDirectory();
        var result = await CliProcess.RunAsync([.. args, "--data", folder.Path]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: ");
        result.Stdout.Should().BeEmpty();
        File.Exists(Path.Combine(folder.Path, "engram.db")).Should().BeFalse("a rejected command must not touch the store");
    }

    [Fact]
    public async Task Unreachable_server_is_a_system_error_exit_2()
    {
        var closedPort = EngramServer.FreePort();
        foreach (var args in new[] { new[] { "add", "x" }, ["stats"] })
        {
            var result = await CliProcess.RunAsync([.. args, "--server", $"http://127.0.0.1:{closedPort}"]);
            result.ExitCode.Should().Be(2, result.ToString());
            result.Stderr.Should().StartWith($"engram: cannot reach the Engram server at http://127.0.0.1:{closedPort}/");
            result.Stdout.Should().BeEmpty();
        }
    }

    [Fact]
    public async Task Server_url_from_the_environment_is_used_and_checked()
    {
        var closedPort = EngramServer.FreePort();
        var viaEnv = await CliProcess.RunAsync(["list"], environment: new Dictionary<string, string> { ["ENGRAM_SERVER"] = $"http://127.0.0.1:{closedPort}" });
        viaEnv.ExitCode.Should().Be(2, viaEnv.ToString());

        var badUrl = await CliProcess.RunAsync(["list", "--server", "localhost:7070"]);
        badUrl.ExitCode.Should().Be(1, badUrl.ToString());
        badUrl.Stderr.Should().StartWith("engram: --server must be an http:// or https:// URL");

        using var folder = new TempDirectory();
        var both = await CliProcess.RunAsync(["list", "--server", "http://127.0.0.1:1", "--data", folder.Path]);
        both.ExitCode.Should().Be(1, both.ToString());
        both.Stderr.Should().Be("engram: give --data or --server, not both\n");
    }

    [Fact]
    public async Task Reading_a_folder_without_a_database_is_a_user_error_and_creates_nothing()
    {
        using var parent = new TempDirectory();
        var missing = Path.Combine(parent.Path, "nowhere");
        var result = await CliProcess.RunAsync(["list", "--data", missing]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: no Engram database at");
        Directory.Exists(missing).Should().BeFalse();

        var viaEnv = await CliProcess.RunAsync(["stats"], environment: new Dictionary<string, string> { ["ENGRAM_DATA"] = missing });
        viaEnv.ExitCode.Should().Be(1, viaEnv.ToString());
        viaEnv.Stderr.Should().Contain(missing);
    }

    [Fact]
    public async Task A_broken_store_is_a_system_error_exit_2()
    {
        using var folder = new TempDirectory();
        await File.WriteAllTextAsync(Path.Combine(folder.Path, "engram.db"), "this is not a SQLite database, just text that is long enough to have a header");
        var result = await CliProcess.RunAsync(["list", "--data", folder.Path]);
        result.ExitCode.Should().Be(2, result.ToString());
        result.Stderr.Should().StartWith("engram: ");
    }

    private static async Task ShouldFailAsync(Task<CliResult> run, string expectedStderrStart)
    {
        var result = await run;
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stdout.Should().BeEmpty();
        result.Stderr.Should().StartWith(expectedStderrStart);
    }
}
