using System.Net;
using Engram.Core.Storage;
using Engram.Server.Operations;
using Engram.Tests.Cli;
using Engram.Tests.KeyValue;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// What a store's open recovered from (its notices: here, another database's key-value journal moved aside) reaches the
/// operator: engram doctor's warnings and exit code, stderr of the other commands, /health (degraded, still ready) and
/// engram_store_notices. Only the server's log had them.
/// </summary>
public sealed class StoreNoticesTests : KvJournalTestBase
{
    [Fact]
    public async Task Doctor_prints_each_store_notice_as_a_warning_and_exits_with_its_problem_code()
    {
        var text = Folder("text");
        await ForeignJournalBesideAsync(text);
        var doctor = await CliProcess.RunAsync(["doctor", "--data", text]);
        doctor.ExitCode.Should().Be(1, doctor.ToString());
        doctor.Stdout.Should().Contain("WARN store_notice").And.Contain("[kv_journal_foreign]").And.Contain("belongs to another database")
            .And.Contain("put it back beside that database").And.Contain("problem(s) found");
        doctor.Stderr.Should().NotContain("belongs to another database", "doctor reports its notices among its checks, not twice");

        var json = Folder("json");
        await ForeignJournalBesideAsync(json);
        var inJson = await CliProcess.RunAsync(["doctor", "--json", "--data", json]);
        inJson.ExitCode.Should().Be(1, inJson.ToString());
        var body = inJson.Json();
        body.GetProperty("healthy").GetBoolean().Should().BeFalse();
        var notice = body.GetProperty("notices").EnumerateArray().Should().ContainSingle().Subject;
        notice.GetProperty("kind").GetString().Should().Be(StoreNotice.KvJournalForeign);
        notice.GetProperty("message").GetString().Should().Contain("foreign-");
        notice.GetProperty("time").GetDateTimeOffset().Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
        body.GetProperty("checks").EnumerateArray().Where(c => c.GetProperty("name").GetString() == "store_notice")
            .Should().ContainSingle().Which.GetProperty("status").GetString().Should().Be(HealthChecks.Warn);

        var later = await CliProcess.RunAsync(["doctor", "--data", json]);
        later.ExitCode.Should().Be(1, later.ToString());
        later.Stdout.Should().NotContain("WARN store_notice", "the notice was the first open's")
            .And.Contain("WARN kv_journal_set_aside").And.Contain("engram.db-kvjournal.foreign-").And.Contain("put a foreign journal back");
        foreach (var aside in Directory.EnumerateFiles(json, "engram.db-kvjournal.foreign-*"))
        {
            File.Delete(aside); // dealt with
        }
        var clean = await CliProcess.RunAsync(["doctor", "--data", json]);
        clean.ExitCode.Should().Be(0, clean.ToString());
    }

    [Fact]
    public async Task Another_command_that_opens_the_store_prints_its_notice_on_stderr_once()
    {
        // engram backup opens the store only to apply a journal no process holds (before it copies the file): that open's
        // notice was dropped.
        var data = Folder("data");
        await ForeignJournalBesideAsync(data);
        var backup = await CliProcess.RunAsync(["backup", "--data", data, "--out", Path.Combine(Folder("backups"), "one.engram-backup")]);
        backup.ExitCode.Should().Be(0, backup.ToString());
        backup.Stderr.Split("belongs to another database").Should().HaveCount(2, $"one warning\n{backup}");
        backup.Stderr.Should().Contain("engram: warning:").And.Contain("foreign-").And.Contain("what to do:");
        backup.Stdout.Should().NotContain("belongs to another database");
    }

    [Fact]
    public async Task Health_reports_the_notices_degraded_but_ready_and_the_gauge_counts_them()
    {
        var data = Folder("served");
        await ForeignJournalBesideAsync(data);
        await using var server = await EngramServer.StartAsync(data);
        var response = await server.Client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK, "a notice degrades, it does not make the server unavailable");
        var body = await response.JsonAsync();
        body.GetProperty("status").GetString().Should().Be("degraded");
        var check = body.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == HealthChecks.NoticesCheck);
        check.GetProperty("status").GetString().Should().Be(HealthChecks.Warn);
        check.GetProperty("detail").GetString().Should().Contain("belongs to another database");
        check.GetProperty("fix").GetString().Should().Contain("RUNBOOK");
        var storage = body.GetProperty("storage");
        storage.GetProperty("notice_count").GetInt64().Should().Be(1);
        var notice = storage.GetProperty("notices").EnumerateArray().Should().ContainSingle().Subject;
        notice.GetProperty("kind").GetString().Should().Be(StoreNotice.KvJournalForeign);
        notice.GetProperty("message").GetString().Should().Contain("foreign-");
        notice.TryGetProperty("time", out _).Should().BeTrue();

        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.Client.GetAsync("/health/live")).StatusCode.Should().Be(HttpStatusCode.OK);
        ReadOnlyModeTests.Gauge("engram_store_notices").Should().BeGreaterThanOrEqualTo(1);
    }
}
