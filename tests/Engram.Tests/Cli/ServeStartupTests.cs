using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Engram.Tests.Durability;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>
/// <c>engram serve</c> as a user starts it: what it says when it is up, and the one line (no stack
/// trace) with exit 1 or 2 for each reason it cannot start.
/// </summary>
public sealed class ServeStartupTests
{
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_busy_port_is_one_line_naming_the_address_and_the_flag_to_pick_another()
    {
        using var data = new TempDirectory();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var result = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", $"http://127.0.0.1:{port}"]);

        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Be(
            $"engram: http://127.0.0.1:{port} is already in use (another engram serve, or another program); choose another address with --urls http://127.0.0.1:{port + 1}\n");
        result.Stdout.Should().NotContain("   at ").And.NotContain("Exception");
    }

    [Theory]
    [InlineData("notaurl", "'notaurl' is not a listen address")]
    [InlineData("http://127.0.0.1:99999", "'http://127.0.0.1:99999' has port 99999; a port is 1-65535")]
    [InlineData("ftp://127.0.0.1:21", "'ftp://127.0.0.1:21' is not a listen address")]
    [InlineData("http://256.1.1.1:7070", "'http://256.1.1.1:7070': 256.1.1.1 is not an IP address (four numbers of 0-255)")]
    [InlineData("http://127.0.0:7070", "'http://127.0.0:7070': 127.0.0 is not an IP address (four numbers of 0-255)")]
    [InlineData("http://127.0.0.1:7312;http://127.0.0.1:7312/", "'http://127.0.0.1:7312/' is given twice")]
    public async Task A_listen_address_Kestrel_would_refuse_is_refused_before_anything_starts(string urls, string message)
    {
        // A probe (session 41): port 99999 exited 2 with "Specified argument was out of the range", after the store and
        // the indexes had loaded; ASPNETCORE_URLS=garbage was reported as the default address.
        using var data = new TempDirectory();
        var result = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", urls]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: invalid configuration: ").And.Contain(message);
        result.Stderr.TrimEnd('\n').Should().NotContain("\n");
        var fromEnvironment = await CliProcess.RunAsync(["serve", "--data", data.Path], environment: new Dictionary<string, string> { ["ASPNETCORE_URLS"] = urls });
        fromEnvironment.ExitCode.Should().Be(1, fromEnvironment.ToString());
        fromEnvironment.Stderr.Should().Contain(message);
    }

    [Fact]
    public async Task A_busy_resp_port_is_one_line_naming_that_address_not_the_http_one()
    {
        using var data = new TempDirectory();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var result = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", $"http://127.0.0.1:{EngramServer.FreePort()}", "--resp", $"127.0.0.1:{port}"]);

        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Be(
            $"engram: the Redis-protocol address 127.0.0.1:{port} is already in use (another engram serve, or a Redis server); choose another with --resp 127.0.0.1:{port + 1}\n");
    }

    [Fact]
    public async Task A_second_server_cannot_share_a_running_servers_resp_port()
    {
        // .NET's ReuseAddress sets SO_REUSEPORT on Linux: a second engram bound the same port and took a share of the
        // connections (and their writes, into its own store).
        var port = EngramServer.FreePort();
        await using var first = await EngramServer.StartAsync(configure: o => o.Resp.Listen = $"127.0.0.1:{port}");
        using var data = new TempDirectory();

        var second = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", $"http://127.0.0.1:{EngramServer.FreePort()}", "--resp", $"127.0.0.1:{port}"]);

        second.ExitCode.Should().Be(1, second.ToString());
        second.Stderr.Should().Contain($"127.0.0.1:{port} is already in use");
    }

    [Fact]
    public async Task The_start_up_log_says_where_the_data_is_which_store_and_embedder_the_addresses_and_that_auth_is_open_on_loopback_only()
    {
        using var data = new TempDirectory();
        await using var server = await EngramChildProcess.StartAsync(data.Path, HealthTimeout,
            new Dictionary<string, string> { ["Logging__LogLevel__Default"] = "Information" });

        var output = await WaitForOutputAsync(server, "Press Ctrl+C to stop.");

        output.Should().Contain($"  data:      {data.Path}\n")
            .And.Contain($"  store:     sqlite, file {Path.Combine(data.Path, "engram.db")}")
            .And.Contain("  embedder:  builtin, model builtin-glove6b-100d-int8-v1, 100 dimensions")
            .And.Contain($"  listening: {server.BaseAddress.ToString().TrimEnd('/')}")
            .And.Contain("  auth:      open (no API keys): serving loopback only");
        output.Should().NotContain("Content root path").And.NotContain("bin/Release").And.NotContain("Hosting environment");
    }

    [Fact]
    public async Task A_second_server_on_a_folder_is_refused_while_the_cli_still_works_beside_the_first_and_a_killed_servers_lock_does_not_block()
    {
        using var data = new TempDirectory();
        var first = await EngramChildProcess.StartAsync(data.Path, HealthTimeout);
        try
        {
            var second = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", $"http://127.0.0.1:{EngramServer.FreePort()}"]);
            second.ExitCode.Should().Be(1, second.ToString());
            second.Stderr.Should().Be(
                $"engram: another Engram server is already serving {data.Path} (it holds {Path.Combine(data.Path, "engram.serve.lock")}); " +
                "stop it first, or give this one another --data folder\n");

            // The in-process CLI takes no server lock: it works beside the running server.
            var added = await CliProcess.RunAsync(["add", "written beside a running server", "--data", data.Path]);
            added.ExitCode.Should().Be(0, added.ToString());

            (await first.KillNineAsync()).Should().Be(EngramChildProcess.SigKillExitCode);
        }
        finally
        {
            await first.DisposeAsync();
        }

        // The lock was the killed process's; the OS released it, the file left behind blocks no one.
        File.Exists(Path.Combine(data.Path, "engram.serve.lock")).Should().BeTrue();
        await using var restarted = await EngramChildProcess.StartAsync(data.Path, HealthTimeout);
        using var client = new HttpClient { BaseAddress = restarted.BaseAddress };
        (await client.GetStringAsync("/v1/stats")).Should().Contain("\"total\":1");
    }

    [Fact]
    public async Task A_data_folder_that_cannot_be_created_or_a_schema_too_new_is_one_line_and_exit_2()
    {
        using var parent = new TempDirectory();
        var file = Path.Combine(parent.Path, "a-file");
        await File.WriteAllTextAsync(file, "not a folder");
        var port = EngramServer.FreePort();

        var notAFolder = await CliProcess.RunAsync(["serve", "--data", Path.Combine(file, "data"), "--urls", $"http://127.0.0.1:{port}"]);
        notAFolder.ExitCode.Should().Be(2, notAFolder.ToString());
        notAFolder.Stderr.Should().StartWith($"engram: cannot create the data folder '{Path.Combine(file, "data")}'");
        notAFolder.Stderr.TrimEnd('\n').Should().NotContain("\n");

        var tooNew = Path.Combine(parent.Path, "too-new");
        await using (var store = Core.Storage.Sqlite.SqliteMemoryStore.Open(tooNew))
        {
        }
        using (var connection = Core.Storage.Sqlite.SqliteConnection.Open(Path.Combine(tooNew, "engram.db")))
        {
            connection.Execute("INSERT INTO schema_version(version, applied_at) VALUES (9999, 0)");
        }
        var refused = await CliProcess.RunAsync(["serve", "--data", tooNew, "--urls", $"http://127.0.0.1:{port}"]);
        refused.ExitCode.Should().Be(2, refused.ToString());
        refused.Stderr.Should().StartWith($"engram: the database '{Path.Combine(tooNew, "engram.db")}' has schema version 9999, newer than this engram understands");
        refused.Stderr.TrimEnd('\n').Should().NotContain("\n");
    }

    private static async Task<string> WaitForOutputAsync(EngramChildProcess server, string marker)
    {
        // The summary is logged when the host reports started, which can be a moment after /health answers.
        var waited = Stopwatch.StartNew();
        while (!server.RecentOutput.Contains(marker, StringComparison.Ordinal) && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(50);
        }
        return server.RecentOutput.Replace(Environment.NewLine, "\n");
    }
}
