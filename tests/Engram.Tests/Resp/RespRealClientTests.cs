using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Tests.Mcp;
using StackExchange.Redis;

namespace Engram.Tests.Resp;

/// <summary>
/// Real Redis clients against the RESP endpoint: Debian's redis-cli running a script whose expected output
/// was recorded from redis-server 7 itself; ioredis (npm) running the swarm scenario with 16 concurrent
/// clients; node-redis (npm `redis`) running it over RESP2 and RESP3; redis-py (Debian's python3-redis) running it with 16 threads, locks and scripts; StackExchange.Redis over RESP2 and RESP3. On SQLite (<see cref="RespRealClientTests"/>) and
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
        summary.GetProperty("leased").GetInt64().Should().Be(16, "the lease (released by a Lua script) let one agent in at a time");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task NodeRedis_SwarmScenario_SixteenClients_SameAsRedis(int resp)
    {
        // The figures are what redis-server 7.0.15 gives for the same script (tests/node/resp-node-redis.mjs).
        var result = await NodeClients.RunAsync([Path.Combine(NodeClients.NodeFolder, "resp-node-redis.mjs"),
            fixture.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), resp.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            NodeClients.NodeFolder, null, TimeSpan.FromMinutes(2));
        result.ExitCode.Should().Be(0, result.ToString());
        var summary = result.Json();
        summary.GetProperty("ok").GetBoolean().Should().BeTrue(result.ToString());
        summary.GetProperty("resp").GetInt32().Should().Be(resp);
        summary.GetProperty("total").GetInt64().Should().Be(16 * 50, "every concurrent INCR counted once");
        summary.GetProperty("score").GetInt64().Should().Be(16 * 2, "the registered script ran once per agent");
        summary.GetProperty("board").GetInt64().Should().Be(16, "WATCH retried every lost race: no agent's update lost");
        summary.GetProperty("boardDistinct").GetInt64().Should().Be(16);
        summary.GetProperty("deleted").GetInt64().Should().Be(16 * 25, "the scan found every state key once");
        summary.GetProperty("left").GetInt64().Should().Be(0);
    }

    [Fact]
    public async Task RedisPy_SwarmScenario_SixteenThreads_SameAsRedis()
    {
        // The figures are what redis-server 7.0.15 gives for the same script (tests/python/resp_swarm.py).
        var script = Path.Combine(Path.GetDirectoryName(NodeClients.NodeFolder)!, "python", "resp_swarm.py");
        var result = await NodeClients.RunProgramAsync("/usr/bin/python3", "Debian packages python3 and python3-redis (redis-py): Debian's own Python, not another on PATH", [script, fixture.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            Path.GetDirectoryName(script)!, null, TimeSpan.FromMinutes(2));
        result.ExitCode.Should().Be(0, result.ToString());
        var summary = result.Json();
        summary.GetProperty("ok").GetBoolean().Should().BeTrue(result.ToString());
        summary.GetProperty("total").GetInt64().Should().Be(16 * 50, "every pipelined INCR counted once");
        summary.GetProperty("claims").GetInt64().Should().Be(16);
        summary.GetProperty("board").GetInt64().Should().Be(16, "WATCH retried every lost race: no agent's update lost");
        summary.GetProperty("boardDistinct").GetInt64().Should().Be(16);
        summary.GetProperty("ledger").GetInt64().Should().Be(16 * 5, "redis-py's Lock (Lua extend and release) let one agent in at a time");
        summary.GetProperty("allowed").GetInt64().Should().Be(100, "the script rate limiter allowed exactly its limit of the 160 calls");
        summary.GetProperty("limiterCount").GetInt64().Should().Be(160);
        summary.GetProperty("reloaded").GetInt64().Should().Be(1, "the registered script ran again after SCRIPT FLUSH");
        summary.GetProperty("deleted").GetInt64().Should().Be(16 * 20);
        summary.GetProperty("left").GetInt64().Should().Be(0);
        summary.GetProperty("bulkSet").GetInt64().Should().Be(10_500, "redis-py's default pipeline (MULTI … EXEC) of 10,500 SETs ran whole");
        summary.GetProperty("bulkRead").GetInt64().Should().Be(10_500);
        summary.GetProperty("bulkDeleted").GetInt64().Should().Be(10_500);
        summary.GetProperty("bulkLeft").GetInt64().Should().Be(0);
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

    [Fact]
    public async Task StackExchangeRedis_BinaryValues_RoundTrip_AndRestSeesThemAsBase64()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{fixture.Port},abortConnect=true,connectTimeout=10000");
        var db = redis.GetDatabase();
        var random = new Random(20);
        List<byte[]> values =
        [
            Enumerable.Range(0, 256).Select(b => (byte)b).ToArray(), // every byte value, 0x80-0xFF not UTF-8 where they stand
            [0xFF],
            [0xC3], // a cut-off two-byte sequence
            [0x80, (byte)'a', (byte)'b'],
            new byte[700_000], // zeros: valid UTF-8 control characters, stored as an escaped JSON string
        ];
        var large = new byte[500_000];
        random.NextBytes(large);
        values.Add(large);
        for (var i = 0; i < values.Count; i++)
        {
            var key = $"bin:{i}";
            (await db.StringSetAsync(key, values[i])).Should().BeTrue();
            ((byte[]?)await db.StringGetAsync(key)).Should().Equal(values[i], $"value {i} reads back byte for byte");
            (await db.StringLengthAsync(key)).Should().Be(values[i].Length);
        }
        ((byte[]?)await db.StringGetSetAsync("bin:1", new byte[] { 0xFE, 0x00 })).Should().Equal(0xFF);
        (await db.StringGetAsync(["bin:1", "bin:2"])).Select(v => (byte[]?)v).Should().BeEquivalentTo(
            new[] { new byte[] { 0xFE, 0x00 }, new byte[] { 0xC3 } }, o => o.WithStrictOrdering());
        var thrown = async () => await db.StringIncrementAsync("bin:1");
        (await thrown.Should().ThrowAsync<RedisServerException>()).Which.Message.Should().Contain("not an integer");

        // REST reads such a value as an explicit base64 object, and one written that way over REST reads as its bytes.
        var http = fixture.Server.Client;
        var stored = await http.GetFromJsonAsync<JsonElement>("/v1/kv/bin:1");
        stored.GetProperty("value").GetProperty("$bytes").GetString().Should().Be(Convert.ToBase64String([0xFE, 0x00]));
        (await fixture.Server.SendJsonAsync("PUT", "/v1/kv/bin:rest", "{\"value\": { \"$bytes\" : \"AP8=\" }}")).IsSuccessStatusCode.Should().BeTrue();
        ((byte[]?)await db.StringGetAsync("bin:rest")).Should().Equal(0x00, 0xFF);
        (await db.StringLengthAsync("bin:rest")).Should().Be(2);
        // Any other object, even one naming $bytes, is JSON and reads as its text.
        foreach (var (key, json) in new[] { ("bin:json", "{\"$bytes\": \"AP8=\", \"x\": 1}"), ("bin:bad", "{\"$bytes\": \"not base64!\"}") })
        {
            (await fixture.Server.SendJsonAsync("PUT", "/v1/kv/" + key, "{\"value\": " + json + "}")).IsSuccessStatusCode.Should().BeTrue();
            ((string?)await db.StringGetAsync(key)).Should().Be(json);
        }
    }
}

/// <summary>The real clients against a server on SQLite.</summary>
public sealed class RespRealClientTests(RespServerFixture fixture) : RespRealClientScenarios(fixture), IClassFixture<RespServerFixture>;

/// <summary>The real clients against a server on PostgreSQL.</summary>
public sealed class RespRealClientPostgresTests(RespPostgresFixture fixture) : RespRealClientScenarios(fixture), IClassFixture<RespPostgresFixture>;
