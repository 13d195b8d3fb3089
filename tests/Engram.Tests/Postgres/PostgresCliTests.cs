using System.Diagnostics;
using System.Net.Http.Json;
using Engram.Tests.Cli;
using Engram.Tests.Durability;
using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

/// <summary>Selecting the PostgreSQL store from the command line: <c>--store</c> and DATABASE_URL, the real executable.</summary>
public sealed class PostgresCliTests
{
    [Fact]
    public async Task Serve_with_a_store_url_keeps_memories_in_postgres_and_says_so_in_its_log_health_and_stats()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        using var own = new TempDirectory();
        await using var server = await EngramChildProcess.StartAsync(url, TimeSpan.FromSeconds(60), new Dictionary<string, string>
        {
            ["Logging__LogLevel__Default"] = "Information",
            ["ENGRAM_DATA"] = own.Path, // the instance's own files (the serve lock)
        });
        using var client = new HttpClient { BaseAddress = server.BaseAddress };

        (await (await client.GetAsync("/health")).JsonAsync()).GetProperty("store").GetString().Should().Be("postgres");
        var created = await client.PostAsJsonAsync("/v1/memories", new { content = "kept in PostgreSQL" });
        created.IsSuccessStatusCode.Should().BeTrue();
        (await (await client.GetAsync("/v1/stats")).JsonAsync()).GetProperty("store").GetProperty("kind").GetString().Should().Be("postgres");

        var waited = Stopwatch.StartNew();
        while (!server.RecentOutput.Contains("Press Ctrl+C to stop.", StringComparison.Ordinal) && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(50);
        }
        server.RecentOutput.Should().Contain($"  store:     postgres, {url}").And.NotContain("password");

        // The CLI reads the same database in process, named by DATABASE_URL.
        var listed = await CliProcess.RunAsync(["list", "--json"], environment: new Dictionary<string, string> { ["DATABASE_URL"] = url });
        listed.ExitCode.Should().Be(0, listed.ToString());
        listed.Stdout.Should().Contain("kept in PostgreSQL");
    }

    [Fact]
    public async Task An_explicit_data_folder_beats_DATABASE_URL_and_a_store_that_is_not_a_postgres_url_is_refused()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        using var data = new TempDirectory();
        var environment = new Dictionary<string, string> { ["DATABASE_URL"] = url };
        (await CliProcess.RunAsync(["add", "only in the folder", "--data", data.Path, "--json"], environment: environment)).ExitCode.Should().Be(0);
        File.Exists(Path.Combine(data.Path, "engram.db")).Should().BeTrue();
        var inPostgres = await CliProcess.RunAsync(["list", "--json"], environment: environment);
        inPostgres.ExitCode.Should().Be(0, inPostgres.ToString());
        inPostgres.Stdout.Should().NotContain("only in the folder");

        var refused = await CliProcess.RunAsync(["serve", "--store", data.Path, "--urls", $"http://127.0.0.1:{EngramServer.FreePort()}"]);
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Stderr.Should().Contain("--store must be a postgres://");
    }
}
