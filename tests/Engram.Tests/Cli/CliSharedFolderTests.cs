using System.Net;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>The CLI in process on a folder a running server also has open (SQLite WAL + busy timeout).</summary>
public sealed class CliSharedFolderTests
{
    [Fact]
    public async Task In_process_writes_while_a_server_runs_on_the_same_folder_are_seen_by_both()
    {
        await using var server = await EngramServer.StartAsync();
        var data = new[] { "--data", server.DataPath };

        var added = await CliProcess.RunAsync(["add", "written by the CLI beside the server", "--user", "alice", "--json", .. data]);
        added.ExitCode.Should().Be(0, added.ToString());
        var id = added.Json().GetProperty("id").GetString()!;

        var response = await server.Client.GetAsync($"/v1/memories/{id}");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("content").GetString().Should().Be("written by the CLI beside the server");

        var viaServer = await server.CreateAsync(new { content = "written through the server", user_id = "alice" });
        var listed = await CliProcess.RunAsync(["list", "--user", "alice", "--json", .. data]);
        listed.ExitCode.Should().Be(0, listed.ToString());
        listed.Json().GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString())
            .Should().Equal(viaServer.GetProperty("id").GetString(), id);

        // Concurrent writers from both sides: nothing lost.
        var cliWrites = Enumerable.Range(0, 3).Select(i => CliProcess.RunAsync(["add", $"cli {i}", .. data]));
        var serverWrites = Enumerable.Range(0, 10).Select(i => server.CreateAsync(new { content = $"server {i}" }));
        (await Task.WhenAll(cliWrites)).Should().OnlyContain(r => r.ExitCode == 0);
        await Task.WhenAll(serverWrites);
        var stats = await server.Client.GetAsync("/v1/stats");
        (await stats.JsonAsync()).GetProperty("memories").GetProperty("total").GetInt64().Should().Be(15);
    }

    [Fact]
    public async Task Json_output_is_the_body_the_rest_api_returns()
    {
        await using var server = await EngramServer.StartAsync();
        var created = await CliProcess.RunAsync(["add", "same bytes", "--tag", "t", "--metadata", "{\"k\":[1,\"two\"]}", "--valence", "0.5",
            "--json", "--server", server.BaseAddress.ToString()]);
        created.ExitCode.Should().Be(0, created.ToString());
        var id = created.Json().GetProperty("id").GetString()!;

        foreach (var (path, cliArgs) in new (string, string[])[]
        {
            ($"/v1/memories/{id}", ["get", id]),
            ("/v1/memories", ["list"]),
            ($"/v1/memories/{id}/history", ["history", id]),
        })
        {
            var rest = (await (await server.Client.GetAsync(path)).Content.ReadAsStringAsync()).Trim();
            foreach (var backend in new[] { new[] { "--server", server.BaseAddress.ToString() }, ["--data", server.DataPath] })
            {
                var cli = await CliProcess.RunAsync([.. cliArgs, "--json", .. backend]);
                cli.ExitCode.Should().Be(0, cli.ToString());
                cli.Stdout.TrimEnd('\n').Should().Be(rest, $"engram {string.Join(' ', cliArgs)} {backend[0]}");
            }
        }
    }
}
