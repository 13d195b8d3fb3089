using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>
/// What a security probe found in session 44: an admin key with a scope could act for another tenant
/// (<c>X-Engram-Tenant</c>: read and bulk-delete its memories), read the whole tenant's audit log and the server's
/// metrics; and <c>/health</c> showed any key the database's location, the store's counts and every finding.
/// </summary>
public sealed class ScopedAdminTests
{
    [Fact]
    public async Task A_scoped_admin_key_stays_in_its_tenant_and_scope()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("a", Role.Admin));
        var scopedAdminKey = await server.CreateKeyAsync("a", Role.Admin, new KeyScope("alice", null));
        var writerB = server.ClientWithKey(await server.CreateKeyAsync("b", Role.Write));
        (await writerB.PostAsJsonAsync("/v1/memories", new { content = "tenant b's memory of alice", user_id = "alice" })).StatusCode.Should().Be(HttpStatusCode.Created);

        var crossing = server.ClientWithKey(scopedAdminKey, tenant: "b");
        var list = await crossing.GetAsync("/v1/memories?user_id=alice");
        list.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await list.Content.ReadAsStringAsync()).Should().Contain("a scoped key acts only within its own tenant and scope");
        (await crossing.DeleteAsync("/v1/memories?user_id=alice&confirm=true")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await (await writerB.GetAsync("/v1/memories")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(1, "tenant b's memory is still there");

        var scopedAdmin = server.ClientWithKey(scopedAdminKey);
        (await scopedAdmin.GetAsync("/v1/admin/audit")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await scopedAdmin.GetAsync("/metrics")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await scopedAdmin.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK, "in its own tenant and scope it works");

        // The unscoped admin keeps all three.
        (await server.ClientWithKey(await server.CreateKeyAsync("a", Role.Admin), tenant: "b").GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await admin.GetAsync("/v1/admin/audit")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await admin.GetAsync("/metrics")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Health_shows_the_findings_and_the_database_location_to_an_unscoped_admin_only()
    {
        await using var server = await EngramServer.StartAsync();
        var admin = server.ClientWithKey(await server.CreateKeyAsync("a", Role.Admin));
        var others = new[]
        {
            server.ClientWithKey(await server.CreateKeyAsync("b", Role.Read)),
            server.ClientWithKey(await server.CreateKeyAsync("a", Role.Admin, new KeyScope("alice", null))),
        };

        var full = await (await admin.GetAsync("/health")).JsonAsync();
        full.GetProperty("database").GetProperty("location").GetString().Should().EndWith(".db");
        full.TryGetProperty("index_lag", out _).Should().BeTrue();
        var checks = full.GetProperty("checks").EnumerateArray().ToList();
        checks.Should().Contain(c => c.GetProperty("name").GetString() == "disk" && c.GetProperty("detail").GetString()!.Contains("free", StringComparison.Ordinal));

        foreach (var client in others)
        {
            var response = await client.GetAsync("/health");
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var text = await response.Content.ReadAsStringAsync();
            var limited = JsonDocument.Parse(text).RootElement;
            limited.GetProperty("status").GetString().Should().Be(full.GetProperty("status").GetString());
            limited.GetProperty("database").TryGetProperty("location", out _).Should().BeFalse();
            limited.TryGetProperty("index_lag", out _).Should().BeFalse();
            limited.GetProperty("checks").EnumerateArray().Select(c => (c.GetProperty("name").GetString(), c.GetProperty("status").GetString()))
                .Should().Equal(checks.Select(c => (c.GetProperty("name").GetString(), c.GetProperty("status").GetString())));
            limited.GetProperty("checks").EnumerateArray().Should().OnlyContain(c => c.GetProperty("detail").GetString() == "(an admin key sees the finding)");
            text.Should().NotContain(server.DataPath);
        }
    }
}
