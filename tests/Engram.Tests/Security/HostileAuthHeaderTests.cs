using System.Net;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>
/// Hostile credentials against a server with keys: every malformed, oversized, near-miss or conflicting
/// key is the same 401 problem (never a 5xx, never a pass), and hostile tenant names from an admin are 400.
/// </summary>
public sealed class HostileAuthHeaderTests
{
    [Fact]
    public async Task Malformed_near_miss_and_conflicting_keys_are_all_401_and_the_valid_key_still_works()
    {
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("acme", Role.Admin, name: "ops");
        var cases = new (string Name, (string Header, string Value)[] Headers)[]
        {
            ("truncated", [("Authorization", "Bearer " + key[..^1])]),
            ("one more character", [("Authorization", "Bearer " + key + "A")]),
            ("upper-cased", [("Authorization", "Bearer " + key.ToUpperInvariant())]),
            ("prefix only", [("Authorization", "Bearer " + key[..12])]),
            ("scheme only", [("Authorization", "Bearer")]),
            ("Token scheme only", [("Authorization", "Token ")]),
            ("unknown scheme", [("Authorization", "Digest " + key)]),
            ("key without scheme", [("Authorization", key)]),
            ("two keys in one header", [("Authorization", $"Bearer {key} {key}")]),
            ("16 KB key", [("Authorization", "Bearer egm_" + new string('A', 16_000))]),
            ("key of the right length in the wrong alphabet", [("Authorization", "Bearer egm_" + new string('%', 43))]),
            ("SQL in the key", [("X-API-Key", "egm_' OR 1=1 --")]),
            ("glob in the key", [("X-API-Key", "egm_*")]),
            ("empty X-API-Key beside nothing", [("X-API-Key", " ")]),
            ("garbage Authorization beside a valid X-API-Key", [("Authorization", "Bearer nope"), ("X-API-Key", key)]),
            ("two Authorization headers, the valid one second", [("Authorization", "Bearer nope"), ("Authorization", "Bearer " + key)]),
        };
        foreach (var (name, headers) in cases)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
            foreach (var (header, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(header, value);
            }
            var response = await server.Client.SendAsync(request);
            var problem = await response.ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
            problem.ToString().Should().NotContain(key[12..], name);
        }
        (await server.ClientWithKey(key).GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Hostile_tenant_names_from_an_admin_are_400_and_never_reach_another_tenant()
    {
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("acme", Role.Admin);
        foreach (var tenant in new[] { "", " ", "../acme", "acme/../globex", "a\u0001b", new string('t', 65), "acme%00", "ac me", "*", "default\u001fuser_id=alice" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
            request.Headers.TryAddWithoutValidation("X-Engram-Tenant", tenant);
            var response = await server.Client.SendAsync(request);
            ((int)response.StatusCode).Should().BeOneOf([400], $"X-Engram-Tenant '{tenant}'");
            await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "X-Engram-Tenant");
        }
        using var twice = new HttpRequestMessage(HttpMethod.Get, "/v1/memories");
        twice.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        twice.Headers.TryAddWithoutValidation("X-Engram-Tenant", ["globex", "acme"]);
        await (await server.Client.SendAsync(twice)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "X-Engram-Tenant");
    }

    [Fact]
    public async Task An_address_presenting_too_many_bad_keys_gets_429_while_valid_keys_and_keyless_requests_are_unaffected()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Auth.FailedAttemptsPerMinute = 3);
        var key = await server.CreateKeyAsync("acme", Role.Read);
        var bad = server.ClientWithKey("egm_" + new string('A', 43));
        for (var i = 0; i < 3; i++)
        {
            await (await bad.GetAsync("/v1/memories")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        }
        var throttled = await bad.GetAsync("/v1/memories");
        await throttled.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests);
        throttled.Headers.RetryAfter!.Delta!.Value.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(1));

        (await server.ClientWithKey(key).GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK, "a valid key is never held back");
        await (await server.Client.GetAsync("/v1/memories")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, null);
    }
}
