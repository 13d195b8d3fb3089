using System.Diagnostics;
using Engram.Tests.Mcp;
using StackExchange.Redis;

namespace Engram.Tests.Resp;

/// <summary>
/// Real Redis clients against the RESP endpoint: Debian's redis-cli running a script whose expected output
/// was recorded from redis-server 7 itself; ioredis (npm) running the swarm scenario with 16 concurrent
/// clients; StackExchange.Redis over RESP2 and RESP3. On SQLite (<see cref="RespRealClientTests"/>) and
/// PostgreSQL (<see cref="RespRealClientPostgresTests"/>): the same replies from either store.
/// </summary>
public abstract class RespRealClientScenarios(RespServerFixture fixture)
{
    [Fact]
    public async Task RedisCli_Script_PrintsWhatRedisPrints()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Resp", "redis-cli-script.txt"));
        var expected = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Resp", "redis-cli-expected.txt"));
        var start = new ProcessStartInfo("redis-cli")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", fixture.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("cannot start redis-cli (Debian package redis-tools): " + ex.Message, ex);
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            await process.StandardInput.WriteAsync(script);
            process.StandardInput.Close();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            (await output).Should().Be(expected, "stderr: " + await errors);
        }
    }

    [Fact]
    public async Task IoRedis_SwarmScenario_SixteenClients_ExactSum()
    {
        var result = await NodeClients.RunAsync([Path.Combine(NodeClients.NodeFolder, "resp-swarm.mjs"), fixture.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            NodeClients.NodeFolder, null, TimeSpan.FromMinutes(2));
        result.ExitCode.Should().Be(0, result.ToString());
        var summary = result.Json();
        summary.GetProperty("ok").GetBoolean().Should().BeTrue(result.ToString());
        summary.GetProperty("total").GetInt64().Should().Be(16 * 50);
        summary.GetProperty("deleted").GetInt64().Should().Be(16 * 25);
        summary.GetProperty("board").GetInt64().Should().Be(16, "every agent's WATCH/MULTI/EXEC update landed once");
    }

    [Theory]
    [InlineData("resp2")]
    [InlineData("resp3")]
    public async Task StackExchangeRedis_Works(string protocol)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{fixture.Port},protocol={protocol},abortConnect=true,connectTimeout=10000");
        var db = redis.GetDatabase();
        var prefix = "se:" + protocol + ":";
        (await db.StringSetAsync(prefix + "a", "hello", TimeSpan.FromSeconds(60))).Should().BeTrue();
        ((string?)await db.StringGetAsync(prefix + "a")).Should().Be("hello");
        (await db.KeyTimeToLiveAsync(prefix + "a")).Should().BeCloseTo(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(5));
        (await db.StringSetAsync(prefix + "a", "other", when: When.NotExists)).Should().BeFalse();
        (await db.StringIncrementAsync(prefix + "n", 5)).Should().Be(5);
        (await db.StringDecrementAsync(prefix + "n")).Should().Be(4);
        (await db.KeyExistsAsync(prefix + "missing")).Should().BeFalse();
        (await db.StringGetAsync([prefix + "a", prefix + "missing", prefix + "n"])).Select(v => (string?)v).Should().Equal("hello", null, "4");
        (await db.KeyExpireAsync(prefix + "n", TimeSpan.FromMinutes(5))).Should().BeTrue();
        (await db.KeyPersistAsync(prefix + "n")).Should().BeTrue();
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var keys = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: prefix + "*", pageSize: 1))
        {
            keys.Add(key!);
        }
        keys.Should().BeEquivalentTo([prefix + "a", prefix + "n"]);
        (await db.KeyDeleteAsync([prefix + "a", prefix + "n"])).Should().Be(2);
        (await db.PingAsync()).Should().BeGreaterThan(TimeSpan.Zero);
        var batch = Enumerable.Range(0, 100).Select(i => db.StringSetAsync(prefix + "b" + i, i.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        (await Task.WhenAll(batch)).Should().AllSatisfy(ok => ok.Should().BeTrue());
        ((long)await db.StringGetAsync(prefix + "b99")).Should().Be(99);

        // Transactions with conditions (WATCH + MULTI/EXEC underneath), and the distributed lock built on them.
#pragma warning disable SER301 // (use SET IFEQ instead): the WATCH + MULTI/EXEC path is what is checked here
        var transaction = db.CreateTransaction();
        transaction.AddCondition(Condition.StringEqual(prefix + "b1", "1"));
        var set = transaction.StringSetAsync(prefix + "b1", "one");
        var incr = transaction.StringIncrementAsync(prefix + "b2");
        (await transaction.ExecuteAsync()).Should().BeTrue();
        (await set).Should().BeTrue();
        (await incr).Should().Be(3);
        var refused = db.CreateTransaction();
        refused.AddCondition(Condition.StringEqual(prefix + "b1", "1"));
        _ = refused.StringSetAsync(prefix + "b1", "not written");
        (await refused.ExecuteAsync()).Should().BeFalse("the condition no longer holds");
#pragma warning restore SER301
        ((string?)await db.StringGetAsync(prefix + "b1")).Should().Be("one");
        (await db.LockTakeAsync(prefix + "lock", "agent-1", TimeSpan.FromSeconds(30))).Should().BeTrue();
        (await db.LockTakeAsync(prefix + "lock", "agent-2", TimeSpan.FromSeconds(30))).Should().BeFalse();
        (await db.LockExtendAsync(prefix + "lock", "agent-1", TimeSpan.FromSeconds(60))).Should().BeTrue();
        (await db.LockReleaseAsync(prefix + "lock", "agent-2")).Should().BeFalse("only the holder releases");
        ((string?)await db.LockQueryAsync(prefix + "lock")).Should().Be("agent-1");
        (await db.LockReleaseAsync(prefix + "lock", "agent-1")).Should().BeTrue();
        (await db.LockTakeAsync(prefix + "lock", "agent-2", TimeSpan.FromSeconds(30))).Should().BeTrue();
    }
}

/// <summary>The real clients against a server on SQLite.</summary>
public sealed class RespRealClientTests(RespServerFixture fixture) : RespRealClientScenarios(fixture), IClassFixture<RespServerFixture>;

/// <summary>The real clients against a server on PostgreSQL.</summary>
public sealed class RespRealClientPostgresTests(RespPostgresFixture fixture) : RespRealClientScenarios(fixture), IClassFixture<RespPostgresFixture>;
