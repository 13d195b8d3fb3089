using System.Net;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>The admin backup routes: make, list, verify; admin keys only; bad names are 400/404 problems.</summary>
public sealed class BackupHttpTests
{
    [Fact]
    public async Task Admin_makes_lists_and_verifies_backups_others_are_refused()
    {
        await using var server = await EngramServer.StartAsync();
        (await server.PostJsonAsync("/v1/memories", """{"content":"backed up over REST"}""")).StatusCode.Should().Be(HttpStatusCode.Created);
        var admin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin));
        var writer = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Write));
        var scopedAdmin = server.ClientWithKey(await server.CreateKeyAsync("default", Role.Admin, new KeyScope("alice", null)));

        var created = await admin.PostAsync("/v1/admin/backups", null);
        created.StatusCode.Should().Be(HttpStatusCode.Created);
        var body = await created.JsonAsync();
        var name = body.GetProperty("name").GetString()!;
        body.GetProperty("verified").GetString().Should().Be("ok");
        body.GetProperty("manifest").GetProperty("counts").GetProperty("memories").GetInt64().Should().Be(1);
        body.GetProperty("manifest").GetProperty("counts").GetProperty("api_keys").GetInt64().Should().Be(3);
        body.GetProperty("manifest").GetProperty("kind").GetString().Should().Be("manual");
        created.Headers.Location!.ToString().Should().EndWith(name);

        var list = await (await admin.GetAsync("/v1/admin/backups")).JsonAsync();
        var item = list.GetProperty("items").EnumerateArray().Single();
        item.GetProperty("name").GetString().Should().Be(name);
        item.GetProperty("verified").GetString().Should().Be("ok");
        item.GetProperty("size_bytes").GetInt64().Should().BePositive();
        list.GetProperty("folder").GetString().Should().Be(Path.Combine(Path.GetFullPath(server.DataPath), "backups"));

        var verified = await (await admin.PostAsync($"/v1/admin/backups/{name}/verify", null)).JsonAsync();
        verified.GetProperty("ok").GetBoolean().Should().BeTrue();
        verified.GetProperty("problems").GetArrayLength().Should().Be(0);

        // A damaged backup: verify answers 200 with ok false and the problem, and the listing shows it failed.
        var path = Path.Combine(server.DataPath, "backups", name);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^10] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);
        var bad = await (await admin.PostAsync($"/v1/admin/backups/{name}/verify", null)).JsonAsync();
        bad.GetProperty("ok").GetBoolean().Should().BeFalse();
        bad.GetProperty("problems")[0].GetString().Should().Contain("SHA-256");
        (await (await admin.GetAsync("/v1/admin/backups")).JsonAsync()).GetProperty("items")[0].GetProperty("verified").GetString().Should().Be("failed");

        await (await admin.PostAsync("/v1/admin/backups/engram-absent.engram-backup/verify", null)).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await admin.PostAsync("/v1/admin/backups/..%2Fengram.db/verify", null)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "name");
        await (await admin.PostAsync("/v1/admin/backups/engram.db/verify", null)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "name");
        await (await writer.GetAsync("/v1/admin/backups")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await writer.PostAsync("/v1/admin/backups", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await scopedAdmin.PostAsync("/v1/admin/backups", null)).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        Directory.GetFiles(Path.Combine(server.DataPath, "backups"), "*" + BackupFile.Extension).Should().ContainSingle();
    }

    [Fact]
    public async Task Scheduled_backups_through_the_service_apply_retention_and_set_the_metrics()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 1, 10, 0, 0, TimeSpan.Zero));
        await using var server = await EngramServer.StartAsync(configure: o => { o.Backup.Hourly = 2; o.Backup.Daily = 0; o.Backup.Weekly = 0; o.Backup.Monthly = 0; }, clock: clock);
        var service = (Server.Operations.BackupService)server.Services.GetService(typeof(Server.Operations.BackupService))!;
        service.NextDue(TimeSpan.FromHours(1)).Should().Be(clock.GetUtcNow() + Server.Operations.BackupService.FirstDelay, "a fresh server waits before its first backup");
        var collected = new List<(string Name, double Value)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Core.Telemetry.EngramMeter.Name && instrument.Name.StartsWith("engram_backup", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => collected.Add((i.Name, v)));
        listener.SetMeasurementEventCallback<int>((i, v, _, _) => collected.Add((i.Name, v)));
        listener.SetMeasurementEventCallback<long>((i, v, _, _) => collected.Add((i.Name, v)));
        listener.Start();
        for (var i = 0; i < 4; i++)
        {
            await service.CreateAsync(BackupKinds.Scheduled);
            clock.Advance(TimeSpan.FromHours(1));
        }
        service.List().Select(e => e.CreatedAt).Should().Equal([clock.GetUtcNow().AddHours(-1), clock.GetUtcNow().AddHours(-2)], "hourly 2 keeps the last two");
        service.NextDue(TimeSpan.FromHours(1)).Should().Be(clock.GetUtcNow() + Server.Operations.BackupService.RetryDelay, "the next is overdue");
        listener.RecordObservableInstruments();
        collected.Should().Contain(("engram_backup_last_result", 1));
        collected.Should().Contain(m => m.Name == "engram_backup_last_success_timestamp_seconds" && m.Value >= clock.GetUtcNow().AddHours(-1).ToUnixTimeSeconds() - 1);
        collected.Count(m => m.Name == "engram_backup_duration_seconds").Should().BeGreaterThanOrEqualTo(4);
        collected.Count(m => m.Name == "engram_backups_total").Should().BeGreaterThanOrEqualTo(4);
    }
}
