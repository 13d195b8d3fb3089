using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>
/// Rules every command keeps, on both backends: --json errors are JSON on stderr with the usual exit
/// codes; naming something that does not exist exits 1 while a query that finds nothing exits 0;
/// errors name the flag the user typed; typos get suggestions.
/// </summary>
public sealed class CliConventionsTests
{
    private const string MissingId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    public async Task With_json_an_error_is_a_problem_object_on_stderr_with_the_same_exit_code(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        await engram.JsonAsync("add", "something to find");

        var invalid = Problem(await engram.RunAsync("add", "x", "--ttl", "0", "--json"), 1);
        invalid.GetProperty("status").GetInt32().Should().Be(400);
        invalid.GetProperty("title").GetString().Should().Be("Invalid request");
        invalid.GetProperty("detail").GetString().Should().Be("--ttl must be between 1 and 3153600000 (100 years)");
        invalid.GetProperty("field").GetString().Should().Be("--ttl");

        var missing = Problem(await engram.RunAsync("get", MissingId, "--json"), 1);
        missing.GetProperty("status").GetInt32().Should().Be(404);
        missing.GetProperty("detail").GetString().Should().Be($"no memory with id '{MissingId}'");

        var absentKey = Problem(await engram.RunAsync("kv", "get", "no-such-key", "--json"), 1);
        absentKey.GetProperty("status").GetInt32().Should().Be(404);
    }

    [Fact]
    public async Task With_json_usage_errors_and_system_errors_are_problem_objects_too()
    {
        using var folder = new TempDirectory();
        var typo = Problem(await CliProcess.RunAsync(["serach", "x", "--json", "--data", folder.Path]), 1);
        typo.GetProperty("detail").GetString().Should().Be("unknown command 'serach'; did you mean 'search'?");

        var unreachable = Problem(await CliProcess.RunAsync(["stats", "--json", "--server", $"http://127.0.0.1:{EngramServer.FreePort()}"]), 2);
        unreachable.GetProperty("status").GetInt32().Should().Be(503);

        var noDatabase = Problem(await CliProcess.RunAsync(["reindex", "--json", "--data", Path.Combine(folder.Path, "nowhere")]), 1);
        noDatabase.GetProperty("status").GetInt32().Should().Be(404);
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    public async Task Naming_something_that_does_not_exist_exits_1_and_a_query_that_finds_nothing_exits_0(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        await engram.JsonAsync("graph", "add-entity", "Alice", "--type", "person");
        await engram.JsonAsync("add", "a memory so the store exists");

        string[][] namesMissing =
        [
            ["get", MissingId],
            ["update", MissingId, "--importance", "0.1"],
            ["delete", MissingId],
            ["history", MissingId],
            ["kv", "get", "missing"],
            ["kv", "del", "missing"],
            ["kv", "expire", "missing", "10"],
            ["graph", "show", "Nobody"],
            ["graph", "show", "Alice", "Nobody"],
            ["graph", "neighbors", "Nobody"],
            ["graph", "observe", "Nobody", "likes tea"],
            ["graph", "delete-entity", "Nobody"],
            ["graph", "path", "Alice", "Nobody"],
        ];
        foreach (var args in namesMissing)
        {
            var result = await engram.RunAsync(args);
            result.ExitCode.Should().Be(1, string.Join(' ', args) + "\n" + result);
            result.Stderr.Should().StartWith("engram: no ", string.Join(' ', args));
            result.Stdout.Should().BeEmpty();
        }
        // Nothing was deleted by the refused delete-entity (Alice was not named, but check the whole graph).
        (await engram.JsonAsync("graph", "show", "Alice")).GetProperty("entities").GetArrayLength().Should().Be(1);

        string[][] findNothing =
        [
            ["list", "--user", "nobody"],
            ["search", "zebra crossing", "--user", "nobody"],
            ["graph", "search", "zebra"],
            ["kv", "list", "--pattern", "nothing:*"],
        ];
        foreach (var args in findNothing)
        {
            var result = await engram.RunAsync(args);
            result.ExitCode.Should().Be(0, string.Join(' ', args) + "\n" + result);
        }
    }

    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    public async Task Errors_name_the_flag_not_the_api_field(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        var id = (await engram.JsonAsync("add", "a fact")).GetProperty("id").GetString()!;

        (await engram.RunAsync("add", "x", "--ttl", "0")).Stderr.Should().Be("engram: --ttl must be between 1 and 3153600000 (100 years)\n");
        (await engram.RunAsync("update", id, "--ttl", "0")).Stderr.Should().Be("engram: --ttl must be between 1 and 3153600000 (100 years)\n");
        (await engram.RunAsync("add", "x", "--importance", "2")).Stderr.Should().Be("engram: --importance must be between 0 and 1 (got 2)\n");
        (await engram.RunAsync("update", id, "--content", " ")).Stderr.Should().Be("engram: --content must not be empty or only white space\n");
        (await engram.RunAsync("list", "--limit", "0")).Stderr.Should().Be("engram: --limit must be between 1 and 1000 (got 0)\n");
        // A positional argument keeps its name: add has no --content flag.
        (await engram.RunAsync("add", " ")).Stderr.Should().Be("engram: content must not be empty or only white space\n");
    }

    [Fact]
    public async Task Bad_metadata_says_what_is_wrong_without_parser_internals()
    {
        using var folder = new TempDirectory();
        var result = await CliProcess.RunAsync(["add", "x", "--metadata", "{oops", "--data", folder.Path]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Be(
            "engram: --metadata is not valid JSON (at character 2: 'o' is an invalid start of a property name. Expected a '\"'); give a JSON object such as '{\"project\":\"x\"}'\n");

        var trailing = await CliProcess.RunAsync(["add", "x", "--metadata", "{\"a\":1,}", "--data", folder.Path]);
        trailing.Stderr.Should().Be("engram: --metadata is not valid JSON (at character 8: a trailing comma is not allowed); give a JSON object such as '{\"project\":\"x\"}'\n");

        foreach (var bad in new[] { "{\"a\":", "[1", "", "nul" })
        {
            var other = await CliProcess.RunAsync(["add", "x", "--metadata", bad, "--data", folder.Path]);
            other.ExitCode.Should().Be(1, other.ToString());
            other.Stderr.Should().StartWith("engram: --metadata ").And.NotContain("LineNumber").And.NotContain("BytePosition")
                .And.NotContain("reader options").And.NotContain("depth");
        }
    }

    [Theory]
    [InlineData(new[] { "serach", "alice" }, "engram: unknown command 'serach'; did you mean 'search'?\nRun 'engram --help' for usage.\n")]
    [InlineData(new[] { "kv", "gte", "k" }, "engram: unknown command 'gte'; did you mean 'get'?\nRun 'engram kv --help' for usage.\n")]
    [InlineData(new[] { "lst" }, "engram: unknown command 'lst'; did you mean 'list'?\nRun 'engram --help' for usage.\n")]
    [InlineData(new[] { "list", "--usr", "alice" }, "engram: unknown option '--usr'; did you mean '--user'?\nRun 'engram list --help' for usage.\n")]
    [InlineData(new[] { "add", "--tpye", "fact" }, "engram: unknown option '--tpye'; did you mean '--type'?\nRun 'engram add --help' for usage.\n")]
    [InlineData(new[] { "frobnicate" }, "engram: unknown command 'frobnicate'\nRun 'engram --help' for usage.\n")]
    public async Task A_mistyped_command_or_flag_gets_a_suggestion_and_exit_1(string[] args, string expected)
    {
        using var folder = new TempDirectory();
        var result = await CliProcess.RunAsync(args, environment: new Dictionary<string, string> { ["ENGRAM_DATA"] = folder.Path });
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Be(expected);
        result.Stdout.Should().BeEmpty();
    }

    [Fact]
    public async Task Update_help_lists_no_defaults_for_the_fields_it_leaves_unchanged()
    {
        var update = await CliProcess.RunAsync(["update", "--help"]);
        update.ExitCode.Should().Be(0, update.ToString());
        update.Stdout.Should().Contain("--importance").And.Contain("--tier").And.Contain("--type")
            .And.NotContain("(default 0.5)").And.NotContain("(default long_term)").And.NotContain("(default fact)");

        var add = await CliProcess.RunAsync(["add", "--help"]);
        add.Stdout.Should().Contain("(default 0.5)").And.Contain("(default long_term)");
    }

    [Fact]
    public async Task Local_stats_show_the_index_as_the_servers_stats_do()
    {
        await using var server = await EngramServer.StartAsync();
        await server.CreateAsync(new { content = "alice likes tea" });
        await server.CreateAsync(new { content = "bob likes coffee" });

        var remote = JsonDocument.Parse(await server.Client.GetStringAsync("/v1/stats")).RootElement;
        var local = await CliProcess.RunAsync(["stats", "--json", "--data", server.DataPath]);
        local.ExitCode.Should().Be(0, local.ToString());
        var index = local.Json().GetProperty("index");

        index.EnumerateObject().Select(p => p.Name).Should().Equal(remote.GetProperty("index").EnumerateObject().Select(p => p.Name));
        index.GetProperty("documents").GetInt32().Should().Be(2);
        index.GetProperty("applied_seq").GetInt64().Should().Be(remote.GetProperty("last_seq").GetInt64());
        index.GetProperty("embedding_model").GetString().Should().Be(remote.GetProperty("index").GetProperty("embedding_model").GetString());

        var text = await CliProcess.RunAsync(["stats", "--data", server.DataPath]);
        text.Stdout.Should().Contain("index:       2 memories, 2 vectors");
    }

    [Fact]
    public async Task Reindex_json_prints_one_json_object_and_no_progress_bar()
    {
        using var folder = new TempDirectory();
        (await CliProcess.RunAsync(["add", "one", "--data", folder.Path])).ExitCode.Should().Be(0);
        (await CliProcess.RunAsync(["add", "two", "--data", folder.Path])).ExitCode.Should().Be(0);

        var result = await CliProcess.RunAsync(["reindex", "--json", "--data", folder.Path]);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Stderr.Should().BeEmpty();
        var report = result.Json();
        report.GetProperty("memories").GetInt32().Should().Be(2);
        report.GetProperty("applied_seq").GetInt64().Should().Be(2);
        report.GetProperty("snapshot").GetString().Should().Be(Path.Combine(folder.Path, "engram.index"));
        File.Exists(Path.Combine(folder.Path, "engram.index")).Should().BeTrue();
    }

    /// <summary>Asserts the exit code, an empty stdout and exactly one JSON object on stderr; returns it.</summary>
    private static JsonElement Problem(CliResult result, int exitCode)
    {
        result.ExitCode.Should().Be(exitCode, result.ToString());
        result.Stdout.Should().BeEmpty(result.ToString());
        result.Stderr.TrimEnd('\n').Should().NotContain("\n", result.ToString());
        var problem = JsonDocument.Parse(result.Stderr).RootElement.Clone();
        problem.GetProperty("exit_code").GetInt32().Should().Be(exitCode);
        problem.GetProperty("title").GetString().Should().NotBeNullOrEmpty();
        problem.GetProperty("detail").GetString().Should().NotBeNullOrEmpty();
        return problem;
    }
}
