using System.Net;
using Engram.Core.Security;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>The audit log: what is recorded over the real server, how an admin reads it, and its bounds.</summary>
public sealed class AuditLogTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task An_admin_writing_in_another_tenant_is_recorded_in_that_tenants_audit_log()
    {
        await using var server = await EngramServer.StartAsync();
        var acme = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin, name: "ops"));
        var asGlobex = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin, name: "support"), tenant: "globex");
        var globexAdmin = server.ClientWithKey(await server.CreateKeyAsync("globex", Role.Admin, name: "owner"));

        (await asGlobex.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await asGlobex.PostAsync("/v1/memories", Json("{\"content\":\"placed by support\"}"))).StatusCode.Should().Be(HttpStatusCode.Created);

        var globex = (await (await globexAdmin.GetAsync("/v1/admin/audit?action=admin.*")).JsonAsync()).GetProperty("items").EnumerateArray().ToList();
        globex.Should().ContainSingle("the read is not recorded, the write is");
        globex[0].GetProperty("actor").GetString().Should().Be("key:support");
        globex[0].GetProperty("target").GetString().Should().Be("POST /v1/memories");
        globex[0].GetProperty("detail").GetString().Should().Be("a key of tenant acme");
        (await (await acme.GetAsync("/v1/admin/audit?action=admin.*")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task Key_changes_bulk_deletes_kv_cleanups_and_denied_requests_are_audited_and_an_admin_reads_its_own_tenants()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin, name: "ops"));
        var reader = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Read, name: "viewer"));
        var otherAdmin = server.ClientWithKey(await server.CreateKeyAsync("globex", Role.Admin));

        var created = await (await admin.PostAsync("/v1/admin/keys", Json("{\"role\":\"write\"}"))).JsonAsync();
        var createdKey = created.GetProperty("key").GetString()!;
        (await admin.DeleteAsync($"/v1/admin/keys/{created.GetProperty("id").GetString()}")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await admin.PostAsync("/v1/memories", Json("{\"content\":\"to go\",\"user_id\":\"alice\"}"))).StatusCode.Should().Be(HttpStatusCode.Created);
        (await admin.DeleteAsync("/v1/memories?user_id=alice&confirm=true")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await admin.PostAsync("/v1/kv/cleanup", Json("{\"pattern\":\"tmp:*\"}"))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await reader.PostAsync("/v1/memories", Json("{\"content\":\"nope\"}"))).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        using (var bad = new HttpRequestMessage(HttpMethod.Get, "/v1/stats"))
        {
            bad.Headers.TryAddWithoutValidation("X-API-Key", createdKey); // the revoked key
            (await server.Client.SendAsync(bad)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }

        var audit = await (await admin.GetAsync("/v1/admin/audit")).JsonAsync();
        var items = audit.GetProperty("items").EnumerateArray().ToList();
        var actions = items.Select(e => $"{e.GetProperty("action").GetString()} {e.GetProperty("actor").GetString()} {e.GetProperty("outcome").GetString()}").ToList();
        actions.Should().Equal(
            "auth.denied key:viewer forbidden",
            "kv.cleanup key:ops ok",
            "memories.bulk_delete key:ops ok",
            "key.revoke key:ops ok",
            "key.create key:ops ok",
            "key.create test ok",
            "key.create test ok");
        items.Select(e => e.GetProperty("seq").GetInt64()).Should().BeInDescendingOrder();
        items[0].GetProperty("remote").GetString().Should().Be("127.0.0.1");
        items[2].GetProperty("detail").GetString().Should().Be("1 deleted");
        audit.ToString().Should().NotContain(createdKey).And.NotContain(createdKey[12..]);

        // The 401 of an unknown or revoked key has no tenant to go to but the operator's, default.
        var denied = await (await admin.GetAsync("/v1/admin/audit?action=auth.denied&limit=1")).JsonAsync();
        denied.GetProperty("items").GetArrayLength().Should().Be(1);
        denied.GetProperty("next_cursor").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
        var page = await (await admin.GetAsync("/v1/admin/audit?action=key.*&limit=2")).JsonAsync();
        page.GetProperty("items").GetArrayLength().Should().Be(2);
        var rest = await (await admin.GetAsync($"/v1/admin/audit?action=key.*&cursor={page.GetProperty("next_cursor").GetString()}")).JsonAsync();
        rest.GetProperty("items").GetArrayLength().Should().Be(2);

        var globex = (await (await otherAdmin.GetAsync("/v1/admin/audit")).JsonAsync()).GetProperty("items");
        globex.EnumerateArray().Select(e => e.GetProperty("tenant").GetString()).Should().OnlyContain(t => t == "globex");
        await (await otherAdmin.GetAsync("/v1/admin/audit?tenant=acme")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        await (await admin.GetAsync("/v1/admin/audit?since=yesterday")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "since");
        await (await admin.GetAsync("/v1/admin/audit?limit=0")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "limit");
    }

    [Fact]
    public async Task Denied_requests_from_one_address_are_written_once_a_second_and_the_next_entry_counts_the_rest()
    {
        using var dir = new TempDirectory();
        await using var store = SqliteMemoryStore.Open(dir.Path);
        await using (var trail = new AuditTrail(store))
        {
            for (var i = 0; i < 1000; i++)
            {
                trail.Denied(Denied(Start, "10.0.0.1"));
            }
            trail.Denied(Denied(Start, "10.0.0.2"));
            trail.Denied(Denied(Start.AddSeconds(1), "10.0.0.1"));
            for (var i = 0; i < 1000; i++)
            {
                trail.Denied(Denied(Start.AddSeconds(2), $"10.1.{i / 250}.{i % 250}"));
            }
        }
        var entries = (await store.ReadAuditAsync(new AuditQuery(Limit: 10_000))).Items;
        entries.Should().HaveCount(1 + 1 + 1 + AuditTrail.MaxDeniedPerSecond, "one per address per second, and a bound on all addresses together");
        entries.Single(e => e.Remote == "10.0.0.1" && e.At == Start.AddSeconds(1)).Detail.Should().Contain("+999 earlier denials");
    }

    [Fact]
    public async Task The_log_keeps_the_newest_entries_up_to_its_bound_and_a_clean_shutdown_writes_every_queued_one()
    {
        using var dir = new TempDirectory();
        await using var store = SqliteMemoryStore.Open(dir.Path);
        await using (var trail = new AuditTrail(store, maxRows: 100))
        {
            for (var i = 0; i < 250; i++)
            {
                trail.Enqueue(new AuditEntry(Start.AddMilliseconds(i), "t", "test", AuditActions.MemoriesBulkDelete, $"#{i}", AuditActions.Ok));
            }
        }
        var entries = (await store.ReadAuditAsync(new AuditQuery(Limit: 1000))).Items;
        entries.Should().HaveCount(100);
        entries[0].Target.Should().Be("#249");
        entries[^1].Target.Should().Be("#150");
    }

    private static AuditEntry Denied(DateTimeOffset at, string remote) =>
        new(at, "default", "anonymous", AuditActions.AuthDenied, "GET /v1/memories", AuditActions.Unauthorized, remote, "no key");

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
