using System.Collections.Concurrent;
using Engram.Core.Security;
using Engram.Server;
using Engram.Tests.Cli;
using Engram.Tests.Support;
using ModelContextProtocol;
using ModelContextProtocol.Client;

namespace Engram.Tests.Mcp;

/// <summary>
/// <c>engram mcp --server URL</c>, the stdio proxy to a running server's /mcp, driven by the official C# client:
/// it forwards, holds no store, answers the handshake while the server is down, and says on stderr and in
/// tool errors why the server cannot be used.
/// </summary>
[Collection(RealClientCollection.Name)]
public sealed class McpProxyTests
{
    [Fact]
    public async Task Forwards_to_the_server_and_keeps_no_store_of_its_own()
    {
        await using var server = await EngramServer.StartAsync();
        await using var proxy = await Proxy.StartAsync(["--server", server.BaseAddress.ToString()]);

        var stored = (await proxy.Client.CallAsync("memory_store", """{"content":"Ida keeps the release notes","user_id":"ida"}""")).Structured();
        var id = stored.GetProperty("id").GetString()!;
        var rest = await server.Client.GetAsync("/v1/memories/" + id);
        (await rest.Content.ReadAsStringAsync()).Should().Contain("Ida keeps the release notes");

        var missing = await proxy.Client.CallAsync("memory_get", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}""");
        missing.IsError.Should().BeTrue();
        missing.Text().Should().StartWith("not found", "the server's tool errors pass through unchanged");

        (await proxy.Client.ListToolsAsync()).Select(t => t.Name).Should().Contain(["memory_store", "memory_get"]);
        Directory.EnumerateFileSystemEntries(proxy.WorkingDirectory, "*", SearchOption.AllDirectories).Should().BeEmpty(
            "the proxy opens no data folder (the in-process default would be ./data)");
    }

    [Fact]
    public async Task Takes_the_server_from_ENGRAM_SERVER_as_the_other_commands_do()
    {
        await using var server = await EngramServer.StartAsync();
        await using var proxy = await Proxy.StartAsync([], new Dictionary<string, string?> { ["ENGRAM_SERVER"] = server.BaseAddress.ToString() });

        var stored = (await proxy.Client.CallAsync("memory_store", """{"content":"the staging database restarts at noon"}""")).Structured();
        var rest = await server.Client.GetAsync("/v1/memories/" + stored.GetProperty("id").GetString());
        ((int)rest.StatusCode).Should().Be(200);
    }

    [Fact]
    public async Task A_down_server_still_gets_the_handshake_and_then_clear_tool_errors()
    {
        var port = EngramServer.FreePort();
        await using var proxy = await Proxy.StartAsync(["--server", $"http://127.0.0.1:{port}"]);
        proxy.Client.ServerInfo!.Name.Should().Be("engram");

        var call = await proxy.Client.CallAsync("memory_store", """{"content":"lost"}""");
        call.IsError.Should().BeTrue();
        call.Text().Should().Be($"cannot reach the Engram server at http://127.0.0.1:{port}/mcp: Connection refused; is `engram serve` running there?");

        var listing = async () => await proxy.Client.ListToolsAsync();
        (await listing.Should().ThrowAsync<McpProtocolException>()).Which.Message.Should().Contain($"cannot reach the Engram server at http://127.0.0.1:{port}/mcp");
        proxy.Stderr.Should().Contain(line => line.StartsWith("engram: cannot reach the Engram server", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_server_that_comes_up_after_the_client_is_used_from_the_next_call()
    {
        // Claude Desktop starts its MCP servers at launch, often before `engram serve` runs.
        var port = EngramServer.FreePort();
        var url = $"http://127.0.0.1:{port}";
        await using var proxy = await Proxy.StartAsync(["--server", url]);
        (await proxy.Client.CallAsync("memory_store", """{"content":"too early"}""")).Text().Should().Contain("cannot reach");

        using var data = new TempDirectory();
        await using var app = ServerApplication.Build([], o =>
        {
            o.DataPath = data.Path;
            o.Memory.BudgetMB = EngramServer.TestProcessBudgetMB; // the budget is this whole test process's
        }, urls: url);
        await app.StartAsync();
        var stored = (await proxy.Client.CallAsync("memory_store", """{"content":"in time"}""")).Structured();
        stored.GetProperty("content").GetString().Should().Be("in time");
        proxy.Stderr.Should().Contain($"engram: connected to {url}/mcp");
        await app.StopAsync();
    }

    [Fact]
    public async Task A_server_that_stops_mid_session_gives_tool_errors_not_a_dead_session()
    {
        var server = await EngramServer.StartAsync();
        await using var proxy = await Proxy.StartAsync(["--server", server.BaseAddress.ToString()]);
        (await proxy.Client.CallAsync("memory_store", """{"content":"first"}""")).Structured();

        await server.DisposeAsync();
        var call = await proxy.Client.CallAsync("memory_store", """{"content":"second"}""");
        call.IsError.Should().BeTrue();
        call.Text().Should().Contain("cannot reach the Engram server");
        var again = await proxy.Client.CallAsync("memory_get", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}""");
        again.Text().Should().Contain("cannot reach the Engram server", "the proxy keeps answering while the server is away");
    }

    [Fact]
    public async Task A_missing_or_wrong_key_is_named_on_stderr_and_in_tool_errors()
    {
        await using var server = await EngramServer.StartAsync();
        await server.CreateKeyAsync("acme", Role.Write);

        await using (var noKey = await Proxy.StartAsync(["--server", server.BaseAddress.ToString()]))
        {
            var call = await noKey.Client.CallAsync("memory_store", """{"content":"x"}""");
            call.IsError.Should().BeTrue();
            call.Text().Should().Contain("needs an API key: set ENGRAM_API_KEY (401 Unauthorized)");
        }
        await using var badKey = await Proxy.StartAsync(["--server", server.BaseAddress.ToString()],
            new Dictionary<string, string?> { ["ENGRAM_API_KEY"] = "egm_wrong" });
        var refused = await badKey.Client.CallAsync("memory_store", """{"content":"x"}""");
        refused.IsError.Should().BeTrue();
        refused.Text().Should().Contain("refused the API key in ENGRAM_API_KEY (401 Unauthorized)");
        badKey.Stderr.Should().Contain(line => line.Contains("refused the API key", StringComparison.Ordinal));
        (await badKey.Client.CallAsync("memory_get", """{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}""")).IsError.Should().BeTrue("the proxy lives on");
    }

    [Fact]
    public async Task A_key_acts_in_its_tenant_and_the_tenant_flag_needs_an_admin_key()
    {
        await using var server = await EngramServer.StartAsync();
        var writer = await server.CreateKeyAsync("acme", Role.Write);
        var key = new Dictionary<string, string?> { ["ENGRAM_API_KEY"] = writer };

        await using (var proxy = await Proxy.StartAsync(["--server", server.BaseAddress.ToString()], key))
        {
            var stored = (await proxy.Client.CallAsync("memory_store", """{"content":"acme ships on Tuesdays"}""")).Structured();
            var rest = await server.ClientWithKey(writer).GetAsync("/v1/memories/" + stored.GetProperty("id").GetString());
            ((int)rest.StatusCode).Should().Be(200, "the memory landed in the key's tenant");
        }
        await using var other = await Proxy.StartAsync(["--server", server.BaseAddress.ToString(), "--tenant", "globex"], key);
        var call = await other.Client.CallAsync("memory_store", """{"content":"x"}""");
        call.IsError.Should().BeTrue();
        call.Text().Should().Contain("403 Forbidden").And.Contain("only an admin key may act for another tenant");
    }

    [Fact]
    public async Task Data_and_server_together_or_a_bad_url_are_refused()
    {
        var both = await CliProcess.RunAsync(["mcp", "--data", "somewhere", "--server", "http://127.0.0.1:7070"]);
        both.ExitCode.Should().Be(1, both.ToString());
        both.Stderr.Should().Contain("engram: give --data or --server, not both");
        both.Stdout.Should().BeEmpty();

        var badUrl = await CliProcess.RunAsync(["mcp", "--server", "ftp://example.com"]);
        badUrl.ExitCode.Should().Be(1, badUrl.ToString());
        badUrl.Stderr.Should().Contain("--server must be an http:// or https:// URL");

        var badTenant = await CliProcess.RunAsync(["mcp", "--server", "http://127.0.0.1:7070", "--tenant", "no spaces"]);
        badTenant.ExitCode.Should().Be(1, badTenant.ToString());
        badTenant.Stderr.Should().Contain("--tenant must be 1-64 characters");
    }

    /// <summary>The official C# client over stdio to <c>engram mcp ARGS</c>, in an empty working directory, keeping its stderr.</summary>
    private sealed class Proxy : IAsyncDisposable
    {
        private readonly TempDirectory _folder;
        private readonly ConcurrentQueue<string> _stderr;

        private Proxy(McpClient client, TempDirectory folder, ConcurrentQueue<string> stderr)
        {
            Client = client;
            _folder = folder;
            _stderr = stderr;
        }

        public McpClient Client { get; }

        public string WorkingDirectory => _folder.Path;

        public IReadOnlyList<string> Stderr => [.. _stderr];

        public static async Task<Proxy> StartAsync(IReadOnlyList<string> args, IDictionary<string, string?>? environment = null)
        {
            var folder = new TempDirectory();
            var stderr = new ConcurrentQueue<string>();
            var env = new Dictionary<string, string?> { ["ENGRAM_DATA"] = null, ["ENGRAM_SERVER"] = null, ["ENGRAM_API_KEY"] = null };
            foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
            {
                env[key] = value;
            }
            var transport = new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = "engram-proxy",
                Command = "dotnet",
                Arguments = [NodeClients.EngramDll, "mcp", .. args],
                EnvironmentVariables = env,
                WorkingDirectory = folder.Path,
                StandardErrorLines = stderr.Enqueue,
            });
            try
            {
                return new Proxy(await McpClient.CreateAsync(transport), folder, stderr);
            }
            catch (Exception ex)
            {
                folder.Dispose();
                throw new InvalidOperationException("engram mcp " + string.Join(' ', args) + " did not start: " + string.Join('\n', stderr), ex);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            _folder.Dispose();
        }
    }
}
