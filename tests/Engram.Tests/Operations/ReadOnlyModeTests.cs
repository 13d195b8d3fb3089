using System.Diagnostics.Metrics;
using System.Net;
using Engram.Core.Security;
using Engram.Core.Telemetry;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>Read-only mode: every write through REST, MCP and the CLI is refused (503 / a tool error / a non-zero exit); reads keep working.</summary>
public sealed class ReadOnlyModeTests
{
    [Fact]
    public async Task AdminSwitch_RefusesRestAndMcpWrites_KeepsReads_ShowsInHealthAndMetrics_AndTurnsOff()
    {
        await using var server = await EngramServer.StartAsync();
        var id = (await server.CreateAsync(new { content = "written before read-only" })).GetProperty("id").GetString();
        (await (await server.Client.GetAsync("/v1/admin/readonly")).JsonAsync()).GetProperty("enabled").GetBoolean().Should().BeFalse();

        var on = await server.PostJsonAsync("/v1/admin/readonly", """{"enabled":true}""");
        on.StatusCode.Should().Be(HttpStatusCode.OK);
        (await on.JsonAsync()).GetProperty("enabled").GetBoolean().Should().BeTrue();
        (await (await server.Client.GetAsync("/v1/admin/readonly")).JsonAsync()).GetProperty("enabled").GetBoolean().Should().BeTrue();

        // Writes of every kind: 503 with a problem body that says why.
        foreach (var (method, path, body) in new[]
        {
            ("POST", "/v1/memories", """{"content":"refused"}"""),
            ("POST", "/v1/memories/batch", """{"items":[{"content":"refused"}]}"""),
            ("PATCH", $"/v1/memories/{id}", """{"content":"refused"}"""),
            ("DELETE", $"/v1/memories/{id}", null),
            ("PUT", "/v1/kv/k", """{"value":1}"""),
            ("POST", "/v1/kv/k/incr", """{"by":1}"""),
            ("POST", "/v1/graph/entities", """{"entities":[{"name":"A","entity_type":"t","observations":[]}]}"""),
        })
        {
            var refused = await server.SendJsonAsync(method, path, body);
            var problem = await refused.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
            problem.GetProperty("detail").GetString().Should().Contain("the server is read-only", $"{method} {path}");
            problem.GetProperty("reason").GetString().Should().Be("read_only");
        }

        // Reads keep working.
        (await server.Client.GetAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.SearchAsync(new { query = "written" })).Should().ContainSingle();
        (await server.Client.GetAsync("/v1/kv")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.Client.GetAsync("/v1/graph")).StatusCode.Should().Be(HttpStatusCode.OK);

        // MCP: the same refusal as a tool error; reads answer.
        await using (var mcp = await McpConnections.ConnectHttpAsync(server))
        {
            var store = await mcp.CallAsync("memory_store", """{"content":"refused over mcp"}""");
            store.IsError.Should().BeTrue();
            store.Text().Should().StartWith("unavailable: the server is read-only");
            (await mcp.CallAsync("kv_set", """{"key":"k","value":1}""")).Text().Should().Contain("read-only");
            (await mcp.CallAsync("create_entities", """{"entities":[{"name":"A","entityType":"t","observations":[]}]}""")).Text().Should().Contain("read-only");
            (await mcp.CallAsync("memory_get", $$"""{"id":"{{id}}"}""")).IsError.Should().NotBe(true);
        }

        // Shown in /health (ready, degraded) and as the engram_readonly gauge.
        var health = await (await server.Client.GetAsync("/health")).JsonAsync();
        health.GetProperty("status").GetString().Should().Be("degraded");
        health.GetProperty("read_only").GetBoolean().Should().BeTrue();
        health.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "read_only").GetProperty("status").GetString().Should().Be("warn");
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK, "a read-only server still serves reads");
        Gauge("engram_readonly").Should().Be(1);

        // Key management stays open to admins (revoking a leaked key during an incident).
        var admin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin));
        (await admin.GetAsync("/v1/admin/keys")).StatusCode.Should().Be(HttpStatusCode.OK);

        (await admin.PostAsync("/v1/admin/readonly", Json("""{"enabled":false}"""))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await admin.PostAsync("/v1/memories", Json("""{"content":"written after read-only"}"""))).StatusCode.Should().Be(HttpStatusCode.Created);
        Gauge("engram_readonly").Should().Be(0);
    }

    [Fact]
    public async Task Switch_NeedsAnUnscopedAdmin_AndAValidBody()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin));
        var writer = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Write));
        var scopedAdmin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin, new KeyScope("alice", null)));
        await (await writer.PostAsync("/v1/admin/readonly", Json("""{"enabled":true}"""))).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await scopedAdmin.PostAsync("/v1/admin/readonly", Json("""{"enabled":true}"""))).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await admin.PostAsync("/v1/admin/readonly", Json("{}"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "enabled");
        (await (await admin.GetAsync("/v1/admin/readonly")).JsonAsync()).GetProperty("enabled").GetBoolean().Should().BeFalse();
    }

    [Fact]
    public async Task ConfiguredReadOnly_RefusesWritesFromTheStart()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.ReadOnly = true);
        var problem = await (await server.PostJsonAsync("/v1/memories", """{"content":"x"}""")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        problem.GetProperty("detail").GetString().Should().Contain("read-only");
        (await server.Client.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Cli_InProcessHonoursReadonlyMode_AndOverServerReportsTheRefusal()
    {
        using var data = new TempDirectory();
        (await CliProcess.RunAsync(["add", "before read-only", "--data", data.Path])).ExitCode.Should().Be(0);
        var env = new Dictionary<string, string> { ["READONLY_MODE"] = "true" };
        var add = await CliProcess.RunAsync(["add", "refused", "--data", data.Path], environment: env);
        add.ExitCode.Should().NotBe(0, add.ToString());
        add.Stderr.Should().Contain("read-only");
        var kv = await CliProcess.RunAsync(["kv", "set", "k", "1", "--data", data.Path], environment: env);
        kv.ExitCode.Should().NotBe(0, kv.ToString());
        kv.Stderr.Should().Contain("read-only");
        var list = await CliProcess.RunAsync(["list", "--json", "--data", data.Path], environment: env);
        list.ExitCode.Should().Be(0, list.ToString());
        list.Stdout.Should().Contain("before read-only");

        await using var server = await EngramServer.StartAsync(configure: o => o.ReadOnly = true);
        var remote = await CliProcess.RunAsync(["add", "refused", "--json", "--server", server.BaseAddress.ToString()]);
        remote.ExitCode.Should().NotBe(0, remote.ToString());
        remote.Stderr.Should().Contain("read-only").And.Contain("503");
        (await CliProcess.RunAsync(["list", "--server", server.BaseAddress.ToString()])).ExitCode.Should().Be(0);
    }

    [Fact]
    public async Task Cli_commands_that_write_below_the_services_refuse_under_readonly_mode_and_their_dry_runs_work()
    {
        // Found by a probe in session 44: import, prune and reflect wrote under READONLY_MODE (restore and migrate too).
        using var temp = new TempDirectory();
        var data = Path.Combine(temp.Path, "data");
        (await CliProcess.RunAsync(["add", "Alice prefers tea", "--user", "alice", "--data", data])).ExitCode.Should().Be(0);
        (await CliProcess.RunAsync(["add", "Alice prefers tea.", "--user", "alice", "--data", data])).ExitCode.Should().Be(0);
        var export = Path.Combine(temp.Path, "export.jsonl");
        (await CliProcess.RunAsync(["export", "--data", data, "--out", export])).ExitCode.Should().Be(0);
        var backup = Path.Combine(temp.Path, "store.engram-backup");
        (await CliProcess.RunAsync(["backup", "--data", data, "--out", backup])).ExitCode.Should().Be(0);

        var env = new Dictionary<string, string> { ["READONLY_MODE"] = "true" };
        var fresh = Path.Combine(temp.Path, "fresh");
        foreach (var args in new[]
        {
            new[] { "import", "--in", export, "--data", fresh },
            ["restore", backup, "--data", fresh],
            ["migrate", "--from", data, "--to", fresh],
            ["maintenance", "prune", "--user-id", "alice", "--data", data],
            ["reflect", "--duplicates-only", "--data", data],
        })
        {
            var refused = await CliProcess.RunAsync(args, environment: env);
            refused.ExitCode.Should().NotBe(0, refused.ToString());
            refused.Stderr.Should().Contain("read-only mode is on", args[0]);
        }
        Directory.Exists(fresh).Should().BeFalse("nothing was imported, restored or migrated");
        var list = await CliProcess.RunAsync(["list", "--json", "--data", data], environment: env);
        list.Stdout.Should().Contain("Alice prefers tea.").And.Contain("Alice prefers tea\"");
        (await CliProcess.RunAsync(["maintenance", "prune", "--user-id", "alice", "--dry-run", "--data", data], environment: env)).ExitCode.Should().Be(0);
        (await CliProcess.RunAsync(["reflect", "--duplicates-only", "--dry-run", "--data", data], environment: env)).ExitCode.Should().Be(0);
    }

    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");

    /// <summary>The current value of one of Engram's observable gauges, read through a MeterListener.</summary>
    internal static double Gauge(string name)
    {
        double? value = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == EngramMeter.Name && instrument.Name == name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((_, v, _, _) => value = v);
        listener.SetMeasurementEventCallback<long>((_, v, _, _) => value = v);
        listener.SetMeasurementEventCallback<double>((_, v, _, _) => value = v);
        listener.Start();
        listener.RecordObservableInstruments();
        return value ?? throw new InvalidOperationException($"no gauge {name}");
    }
}
