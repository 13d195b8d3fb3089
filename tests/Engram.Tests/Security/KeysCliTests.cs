using System.Net;
using System.Text;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary><c>engram keys</c> and <c>engram audit</c> as a user runs them (the real executable), alone and beside a running server.</summary>
public sealed class KeysCliTests
{
    [Fact]
    public async Task Create_prints_the_key_last_list_never_shows_it_and_the_store_holds_only_its_hash()
    {
        using var data = new TempDirectory();
        var created = await CliProcess.RunAsync(["keys", "create", "--data", data.Path, "--tenant", "acme", "--role", "write", "--scope", "user_id=alice",
            "--name", "bot", "--expires", "30d"]);
        created.ExitCode.Should().Be(0, created.ToString());
        var key = LastLine(created.Stdout);
        key.Should().MatchRegex("^egm_[A-Za-z0-9_-]{43}$");
        created.Stdout.Should().Contain("tenant acme, role write, scope user_id=alice, expires ");

        var json = await CliProcess.RunAsync(["keys", "create", "--data", data.Path, "--tenant", "acme", "--role", "read", "--json"]);
        json.ExitCode.Should().Be(0, json.ToString());
        var second = json.Json();
        var secondKey = second.GetProperty("key").GetString()!;
        second.GetProperty("id").GetString().Should().HaveLength(26);
        second.GetProperty("prefix").GetString().Should().Be(secondKey[..12]);

        foreach (var args in new[] { new[] { "keys", "list", "--data", data.Path }, ["keys", "list", "--data", data.Path, "--json"] })
        {
            var listed = await CliProcess.RunAsync(args);
            listed.ExitCode.Should().Be(0, listed.ToString());
            listed.Stdout.Should().Contain(key[..12]).And.Contain("bot").And.Contain("user_id=alice".Split('=')[1]);
            listed.Stdout.Should().NotContain(key).And.NotContain(secondKey).And.NotContain(key[12..20]).And.NotContain("hash");
        }

        foreach (var file in Directory.GetFiles(data.Path, SqliteMemoryStore.FileName + "*"))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            foreach (var plain in new[] { key, secondKey })
            {
                bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(plain)).Should().Be(-1, $"{Path.GetFileName(file)} must not hold a plain key");
                bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(plain[4..])).Should().Be(-1, $"{Path.GetFileName(file)} must not hold a key's secret part");
            }
        }
    }

    [Theory]
    [InlineData("http://0.0.0.0:{0}")]
    [InlineData("http://*:{0}")]
    [InlineData("http://+:{0}")]
    [InlineData("http://192.168.1.20:{0}")]
    public async Task With_no_keys_serve_refuses_a_non_loopback_address_in_one_line_naming_the_command_that_creates_a_key(string pattern)
    {
        using var data = new TempDirectory();
        var url = string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, EngramServer.FreePort());
        var result = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", url]);
        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().Be($"engram: no API keys exist, so Engram serves only on loopback and will not listen on {url}; " +
            $"create a key first: engram keys create --data {data.Path} --tenant default --role admin\n");
        result.Stdout.Should().NotContain("   at ").And.NotContain("Exception");
    }

    [Fact]
    public async Task Revoke_and_rotate_from_the_cli_reach_a_server_running_on_the_folder_and_are_audited()
    {
        using var data = new TempDirectory();
        await using var server = await EngramServer.StartAsync(data.Path);
        var adminKey = await server.CreateKeyAsync("default", Core.Security.Role.Admin, name: "ops");
        var admin = server.ClientWithKey(adminKey);

        var created = await CliProcess.RunAsync(["keys", "create", "--data", data.Path, "--tenant", "default", "--role", "read", "--json"]);
        created.ExitCode.Should().Be(0, created.ToString());
        var readKey = created.Json().GetProperty("key").GetString()!;
        var reader = server.ClientWithKey(readKey);
        (await reader.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK, "a key made by the CLI works on the running server");

        var rotated = await CliProcess.RunAsync(["keys", "rotate", readKey[..12], "--data", data.Path]);
        rotated.ExitCode.Should().Be(0, rotated.ToString());
        var newKey = LastLine(rotated.Stdout);
        newKey.Should().StartWith("egm_").And.NotBe(readKey);
        (await WaitForStatusAsync(reader, HttpStatusCode.Unauthorized)).Should().Be(HttpStatusCode.Unauthorized, "the rotated-out key stops working within a second or two");
        var rotatedReader = server.ClientWithKey(newKey);
        (await rotatedReader.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);

        var revoked = await CliProcess.RunAsync(["keys", "revoke", newKey[4..12], "--data", data.Path]);
        revoked.ExitCode.Should().Be(0, revoked.ToString());
        revoked.Stdout.Should().StartWith("Revoked key ");
        (await WaitForStatusAsync(rotatedReader, HttpStatusCode.Unauthorized)).Should().Be(HttpStatusCode.Unauthorized, "a key revoked by the CLI stops working within a second or two");
        (await admin.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK, "other keys go on working");

        var missing = await CliProcess.RunAsync(["keys", "revoke", "egm_nope1234", "--data", data.Path]);
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Be("engram: no API key egm_nope1234\n");

        var audit = await CliProcess.RunAsync(["audit", "--data", data.Path, "--action", "key.*", "--since", "1h", "--json"]);
        audit.ExitCode.Should().Be(0, audit.ToString());
        var entries = audit.Json().GetProperty("items").EnumerateArray().Select(e => (Action: e.GetProperty("action").GetString(), Actor: e.GetProperty("actor").GetString())).ToList();
        entries.Should().Equal(("key.revoke", "cli"), ("key.rotate", "cli"), ("key.create", "cli"), ("key.create", "test"));
        audit.Stdout.Should().NotContain(readKey).And.NotContain(newKey);

        var viaRest = await (await admin.GetAsync("/v1/admin/audit?action=key.revoke")).JsonAsync();
        viaRest.GetProperty("items").EnumerateArray().Should().ContainSingle().Which.GetProperty("actor").GetString().Should().Be("cli");
    }

    [Fact]
    public async Task The_cli_against_a_server_with_keys_sends_ENGRAM_API_KEY()
    {
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("default", Core.Security.Role.Write);

        var refused = await CliProcess.RunAsync(["add", "needs a key", "--server", server.BaseAddress.ToString()]);
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Stderr.Should().StartWith("engram: a valid API key is required");

        var added = await CliProcess.RunAsync(["add", "sent with a key", "--server", server.BaseAddress.ToString()],
            environment: new Dictionary<string, string> { ["ENGRAM_API_KEY"] = key });
        added.ExitCode.Should().Be(0, added.ToString());
    }

    [Fact]
    public async Task Bad_input_is_one_line_and_exit_1()
    {
        using var data = new TempDirectory();
        foreach (var (args, expected) in new (string[], string)[]
        {
            (["keys", "create", "--data", data.Path, "--tenant", "bad tenant", "--role", "read"], "engram: --tenant must be 1-64 characters"),
            (["keys", "create", "--data", data.Path, "--tenant", "t", "--role", "read", "--scope", "session_id=x"], "engram: --scope must be user_id=U or agent_id=A"),
            (["keys", "create", "--data", data.Path, "--tenant", "t", "--role", "read", "--expires", "2020-01-01"], "engram: expires_at must be in the future"),
            (["keys", "create", "--data", data.Path, "--tenant", "t", "--role", "read", "--expires", "soon"], "engram: --expires must be an ISO date"),
            (["keys", "create", "--data", data.Path, "--tenant", "t", "--role", "root"], "engram: "),
            (["audit", "--data", Path.Combine(data.Path, "none")], "engram: no Engram database in"),
        })
        {
            var result = await CliProcess.RunAsync(args);
            result.ExitCode.Should().Be(1, result.ToString());
            result.Stderr.Should().StartWith(expected);
            result.Stderr.TrimEnd('\n').Should().NotContain("\n", result.ToString());
        }
    }

    private static string LastLine(string stdout) => stdout.TrimEnd('\n').Split('\n')[^1];

    /// <summary>Polls for up to 10 s (a loaded machine); the server's own check runs once a second.</summary>
    private static async Task<HttpStatusCode> WaitForStatusAsync(HttpClient client, HttpStatusCode wanted)
    {
        var status = HttpStatusCode.OK;
        for (var i = 0; i < 100 && status != wanted; i++)
        {
            status = (await client.GetAsync("/v1/memories")).StatusCode;
            if (status != wanted)
            {
                await Task.Delay(100);
            }
        }
        return status;
    }
}
