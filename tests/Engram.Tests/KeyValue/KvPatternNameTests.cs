using System.Net;
using Engram.Tests.Resp;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>
/// A pattern matches a key by the name its caller sees or the name it is stored under (a probe, session 41): patterns were
/// rewritten as keys are, so <c>app:sess:*</c> (three segments, given the tenant) missed <c>app:sess:abc:def</c>,
/// <c>app:s*</c> missed <c>app:sess:x</c>, and a cleanup by pattern said "done" with matching keys left. Both backends,
/// over REST (listing, cleanup) and RESP (KEYS, SCAN, DEL of what KEYS named).
/// </summary>
public sealed class KvPatternNameTests
{
    // Shown name -> how it is written. "app:default:task:1" is written with the tenant and shown without it.
    private static readonly string[] Written = ["app:sess:abc:def", "app:sess:x", "app:sess:y:z:w", "app:default:task:1", "other:1", "apple"];

    public static TheoryData<Backend, string, string[]> Cases()
    {
        var data = new TheoryData<Backend, string, string[]>();
        foreach (var backend in new[] { Backend.Sqlite, Backend.Postgres })
        {
            data.Add(backend, "app:sess:*", ["app:sess:abc:def", "app:sess:x", "app:sess:y:z:w"]);
            data.Add(backend, "app:s*", ["app:sess:abc:def", "app:sess:x", "app:sess:y:z:w"]);
            data.Add(backend, "app:*:x", ["app:sess:x"]);
            data.Add(backend, "*:1", ["app:task:1", "other:1"]);
            // The stored name: a swarm's {prefix}:{tenant}:* finds what it wrote with its tenant (and the three-segment
            // keys, which that name also reaches).
            data.Add(backend, "app:default:*", ["app:sess:x", "app:task:1"]);
            data.Add(backend, "app*", ["app:sess:abc:def", "app:sess:x", "app:sess:y:z:w", "app:task:1", "apple"]);
            data.Add(backend, "app:task:?", ["app:task:1"]);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Listing_KEYS_SCAN_and_cleanup_find_every_key_a_pattern_names(Backend backend, string pattern, string[] expected)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        using var resp = await RespClient.ConnectAsync(port);
        foreach (var key in Written)
        {
            (await resp.CallAsync("SET", key, "v")).Should().Be("+OK");
        }

        var listed = await server.Client.GetAsync("/v1/kv?limit=1000&pattern=" + Uri.EscapeDataString(pattern));
        (await listed.JsonAsync()).GetProperty("items").EnumerateArray().Select(i => i.GetProperty("key").GetString())
            .Should().BeEquivalentTo(expected, "listing {0}", pattern);
        ((object?[])(await resp.CallAsync("KEYS", pattern))!).Cast<string>().Should().BeEquivalentTo(expected, "KEYS {0}", pattern);
        var scanned = new List<string>();
        var cursor = "0";
        do
        {
            var page = (object?[])(await resp.CallAsync("SCAN", cursor, "MATCH", pattern, "COUNT", "2"))!;
            cursor = (string)page[0]!;
            scanned.AddRange(((object?[])page[1]!).Cast<string>());
        }
        while (cursor != "0");
        scanned.Should().BeEquivalentTo(expected, "SCAN MATCH {0}", pattern);

        var cleanup = await server.SendJsonAsync("POST", "/v1/kv/cleanup", $$"""{"pattern":{{System.Text.Json.JsonSerializer.Serialize(pattern)}}}""");
        cleanup.StatusCode.Should().Be(HttpStatusCode.OK);
        (await cleanup.JsonAsync()).GetProperty("deleted").GetInt32().Should().Be(expected.Length);
        var left = (object?[])(await resp.CallAsync("KEYS", "*"))!;
        left.Cast<string>().Should().BeEquivalentTo(Written.Select(Shown).Except(expected), "what {0} does not name stays", pattern);
    }

    private static string Shown(string written) => written == "app:default:task:1" ? "app:task:1" : written;
}
