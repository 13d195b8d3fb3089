using System.Net;
using System.Net.Http.Json;
using Engram.Core.Security;
using Engram.Tests.Support;
using ConnectionMultiplexer = StackExchange.Redis.ConnectionMultiplexer;

namespace Engram.Tests.Resp;

/// <summary>
/// AUTH with Engram API keys: once a key exists every data command needs one (NOAUTH), a wrong key is
/// WRONGPASS, the tenant and role come from the key (another tenant's RESP client sees nothing of it, a read
/// key cannot write), a revoked key stops working on an open connection, and idle connections are closed.
/// </summary>
public sealed class RespAuthTests
{
    [Fact]
    public async Task ScopedKeys_ReadAndWriteTheirOwnPartition_OverResp()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        var alice = await server.CreateKeyAsync("acme", Role.Write, new KeyScope("alice", null));
        var bob = await server.CreateKeyAsync("acme", Role.Write, new KeyScope("bob", null));
        var tenant = await server.CreateKeyAsync("acme", Role.Write);

        using var onAlice = await RespClient.ConnectAsync(port);
        (await onAlice.CallAsync("AUTH", alice)).Should().Be("+OK");
        using var onBob = await RespClient.ConnectAsync(port);
        (await onBob.CallAsync("AUTH", bob)).Should().Be("+OK");
        using var onTenant = await RespClient.ConnectAsync(port);
        (await onTenant.CallAsync("AUTH", tenant)).Should().Be("+OK");

        (await onAlice.CallAsync("SET", "app:state:1", "alice's")).Should().Be("+OK");
        (await onBob.CallAsync("SET", "app:state:1", "bob's")).Should().Be("+OK");
        // GETs of keys held in memory take the fast path; a scoped key must still read its own partition there.
        (await onAlice.CallAsync("GET", "app:state:1")).Should().Be("alice's");
        (await onBob.CallAsync("GET", "app:state:1")).Should().Be("bob's");
        (await onTenant.CallAsync("GET", "app:state:1")).Should().BeNull("the unscoped tenant namespace holds neither");
        ((object?[])(await onAlice.CallAsync("MGET", "app:state:1", "app:state:2"))!).Should().Equal(new object?[] { "alice's", null });
        (await onBob.CallAsync("EXISTS", "app:state:1")).Should().Be(1L);
        (await onTenant.CallAsync("EXISTS", "app:state:1")).Should().Be(0L);
    }

    /// <summary>
    /// RESET (Redis 6.2+): a MULTI block is discarded and the watches with it, the protocol is RESP2 again, and the key is
    /// forgotten, so the next data command needs AUTH; the connection and its name stay.
    /// </summary>
    [Fact]
    public async Task Reset_DiscardsTheTransaction_BackToResp2_AndForgetsTheKey()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        var key = await server.CreateKeyAsync("acme", Role.Write);

        using var client = await RespClient.ConnectAsync(port);
        (await client.CallAsync("RESET")).Should().Be("+RESET", "allowed before AUTH, as in Redis");
        (await client.CallAsync("HELLO", "3", "AUTH", "default", key, "SETNAME", "pooled")).Should().BeOfType<object?[]>();
        (await client.CallAsync("SET", "reset:kept", "1")).Should().Be("+OK");
        (await client.CallAsync("WATCH", "reset:kept")).Should().Be("+OK");
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "reset:queued", "1")).Should().Be("+QUEUED");
        (await client.CallAsync("RESET", "now")).Should().BeOfType<string>().Which.Should().StartWith("-ERR wrong number of arguments");
        (await client.CallAsync("RESET")).Should().Be("+RESET");
        (await client.CallAsync("EXEC")).Should().Be("-ERR EXEC without MULTI", "RESET discarded the block");
        (await client.CallAsync("GET", "reset:kept")).Should().Be("-NOAUTH Authentication required.");
        (await client.CallAsync("CLIENT", "GETNAME")).Should().BeNull("the name goes, as redis-server's does (RespStringCommandTests compares it)");
        (await client.CallAsync("AUTH", key)).Should().Be("+OK");
        (await client.CallAsync("EXISTS", "reset:queued")).Should().Be(0L, "the queued SET never ran");
        ((string)(await client.CallAsync("CLIENT", "INFO"))!).Should().Contain(" resp=2 ", "RESET went back to RESP2");

        // A watch alone goes too: another client's change of the watched key no longer aborts the next EXEC.
        using var other = await RespClient.ConnectAsync(port);
        (await other.CallAsync("AUTH", key)).Should().Be("+OK");
        (await client.CallAsync("WATCH", "reset:kept")).Should().Be("+OK");
        (await client.CallAsync("RESET")).Should().Be("+RESET");
        (await client.CallAsync("AUTH", key)).Should().Be("+OK");
        (await other.CallAsync("SET", "reset:kept", "changed")).Should().Be("+OK");
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "reset:kept", "2")).Should().Be("+QUEUED");
        (await client.CallAsync("EXEC")).Should().BeEquivalentTo(new object?[] { "+OK" });
        (await client.CallAsync("GET", "reset:kept")).Should().Be("2");
    }

    [Fact]
    public async Task Keys_DecideTenantAndRole_OverResp()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        var acme = await server.CreateKeyAsync("acme", Role.Write, name: "acme-agent");
        var acmeReader = await server.CreateKeyAsync("acme", Role.Read);
        var globex = await server.CreateKeyAsync("globex", Role.Admin);

        using var anonymous = await RespClient.ConnectAsync(port);
        (await anonymous.CallAsync("PING")).Should().Be("+PONG");
        (await anonymous.CallAsync("GET", "app:session:1")).Should().Be("-NOAUTH Authentication required.");
        (await anonymous.CallAsync("SET", "app:session:1", "x")).Should().Be("-NOAUTH Authentication required.");
        (await anonymous.CallAsync("AUTH", "not-a-key")).Should().Be("-WRONGPASS invalid username-password pair or user is disabled.");
        (await anonymous.CallAsync("AUTH", "alice", acme)).Should().Be("-WRONGPASS invalid username-password pair or user is disabled.");
        (await anonymous.CallAsync("HELLO", "3")).Should().BeOfType<string>().Which.Should().StartWith("-NOAUTH");

        using var writer = await RespClient.ConnectAsync(port);
        (await writer.CallAsync("AUTH", "default", acme)).Should().Be("+OK");
        (await writer.CallAsync("SET", "app:session:1", "acme state")).Should().Be("+OK");

        // REST with the same tenant's key reads it, stored under the tenant; history names the key's actor.
        var acmeHttp = server.ClientWithKey(acme);
        (await acmeHttp.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/app:session:1")).GetProperty("value").GetString().Should().Be("acme state");
        var history = await acmeHttp.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/app:session:1?history=true");
        history.GetProperty("items")[0].GetProperty("actor").GetString().Should().Be("key:acme-agent");

        using var other = await RespClient.ConnectAsync(port);
        (await other.CallAsync("HELLO", "3", "AUTH", "default", globex)).Should().BeOfType<object?[]>();
        (await other.CallAsync("GET", "app:session:1")).Should().BeNull();
        ((object?[])(await other.CallAsync("KEYS", "*"))!).Should().BeEmpty();

        using var reader = await RespClient.ConnectAsync(port);
        (await reader.CallAsync("AUTH", acmeReader)).Should().Be("+OK");
        (await reader.CallAsync("GET", "app:session:1")).Should().Be("acme state");
        (await reader.CallAsync("SET", "app:session:1", "overwrite")).Should().BeOfType<string>().Which.Should().StartWith("-NOPERM ");
        (await reader.CallAsync("INCR", "app:count:1")).Should().BeOfType<string>().Which.Should().StartWith("-NOPERM ");

        // StackExchange.Redis with the key as its password.
        await using (var redis = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port},password={acme},abortConnect=true"))
        {
            ((string?)await redis.GetDatabase().StringGetAsync("app:session:1")).Should().Be("acme state");
        }

        // A revoked key stops working on the connection that used it (re-checked about once a second).
        var keys = server.Services.GetService(typeof(ApiKeyService)) as ApiKeyService;
        var listed = await keys!.ListAsync("acme");
        await keys.RevokeAsync(listed.Single(k => k.Name == "acme-agent").Id, "acme", "test");
        object? reply = null;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            reply = await writer.CallAsync("GET", "app:session:1");
            if (reply is string s && s.StartsWith("-NOAUTH", StringComparison.Ordinal))
            {
                break;
            }
            await Task.Delay(100);
        }
        reply.Should().Be("-NOAUTH Authentication required.");
        (await acmeHttp.GetAsync("/v1/kv/app:session:1")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task IdleConnections_AreClosed()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.IdleTimeoutSeconds = 1;
        });
        var port = server.RespPort;
        using var idle = await RespClient.ConnectAsync(port);
        (await idle.CallAsync("PING")).Should().Be("+PONG");
        idle.IsClosedByServer().Should().BeTrue("the connection sent nothing for longer than the idle time-out");
        using var fresh = await RespClient.ConnectAsync(port);
        (await fresh.CallAsync("PING")).Should().Be("+PONG");
    }
}
