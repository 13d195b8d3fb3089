using System.Diagnostics;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Engram.Tests.Resp;

/// <summary>
/// WAIT and WAITAOF. Engram has no replicas: WAIT answers 0 (at once, or when its timeout ends, as Redis with replicas
/// that do not answer). WAITAOF's local count maps onto the key-value durability: with relaxed durability, numlocal 1
/// syncs the store before the reply, so the writes acknowledged before it survive a power cut too.
/// </summary>
public abstract class RespWaitScenarios(RespServerFixture engram, RedisReferenceFixture reference)
{
    protected RespServerFixture Engram => engram;

    [Fact]
    public async Task The_replies_before_a_blocking_wait_are_sent_before_it_blocks()
    {
        // A PING and a WAIT for a replica with no time-out in one write: +PONG comes at once, the WAIT's reply never.
        using var client = await engram.ConnectAsync();
        await client.SendRawAsync([.. RespClient.Encode("PING"), .. RespClient.Encode("WAIT", "1", "0")]);
        var read = Task.Run(client.Read);
        (await read.WaitAsync(TimeSpan.FromSeconds(10))).Should().Be("+PONG", "the reply was held while the WAIT blocked");
    }

    [Fact]
    public async Task Wait_answers_as_redis_without_replicas()
    {
        using var engramClient = await engram.ConnectAsync();
        using var redisClient = await RespClient.ConnectAsync(reference.Redis.Port);
        string[][] script =
        [
            ["SET", "wait:a", "1"],
            ["WAIT", "0", "0"],
            ["WAIT", "0", "100"],
            ["WAIT", "x", "0"],
            ["WAIT", "0", "x"],
            ["WAIT", "0", "-1"],
            ["WAIT", "0"],
            ["WAIT", "0", "0", "0"],
        ];
        foreach (var command in script)
        {
            (await engramClient.CallAsync(command)).Should().BeEquivalentTo(await redisClient.CallAsync(command), o => o.WithStrictOrdering(),
                string.Join(' ', command));
        }

        // Replicas asked for: both wait out the timeout, then count none.
        var waited = Stopwatch.StartNew();
        (await engramClient.CallAsync("WAIT", "1", "150")).Should().Be(0L);
        waited.Elapsed.Should().BeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(140));
        (await redisClient.CallAsync("WAIT", "1", "150")).Should().Be(0L);

        // Not inside a transaction: a step of the store cannot wait for its own sync.
        (await engramClient.CallAsync("MULTI")).Should().Be("+OK");
        (await engramClient.CallAsync("WAIT", "0", "0")).Should().BeOfType<string>().Which.Should().StartWith("-ERR 'wait' cannot run inside MULTI");
        (await engramClient.CallAsync("DISCARD")).Should().Be("+OK");
        (await engramClient.CallAsync("EVAL", "return redis.call('WAITAOF', '1', '0', '0')", "0")).Should().BeOfType<string>()
            .Which.Should().StartWith("-ERR");
    }

    [Fact]
    public async Task Waitaof_checks_its_arguments_and_waits_out_replicas()
    {
        using var client = await engram.ConnectAsync();
        (await client.CallAsync("WAITAOF", "2", "0", "0")).Should().Be("-ERR value is out of range, value must between 0 and 1");
        (await client.CallAsync("WAITAOF", "x", "0", "0")).Should().Be("-ERR value is not an integer or out of range");
        (await client.CallAsync("WAITAOF", "1", "-1", "0")).Should().Be("-ERR value is out of range, must be positive");
        (await client.CallAsync("WAITAOF", "1", "0", "-5")).Should().Be("-ERR timeout is negative");
        (await client.CallAsync("WAITAOF", "1", "0", "x")).Should().Be("-ERR timeout is not an integer or out of range");
        (await client.CallAsync("WAITAOF", "1", "0")).Should().Be("-ERR wrong number of arguments for 'waitaof' command");

        var waited = Stopwatch.StartNew();
        (await client.CallAsync("WAITAOF", "1", "1", "150")).Should().BeEquivalentTo(new object?[] { 1L, 0L }, o => o.WithStrictOrdering());
        waited.Elapsed.Should().BeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(140));
    }

    /// <summary>
    /// WAIT 1 0 blocks for good (no replica will answer), as in Redis; INFO counts it among blocked_clients, and a client
    /// that gives up and leaves takes the connection with it, instead of leaving it waiting for ever.
    /// </summary>
    [Fact]
    public async Task A_blocked_wait_ends_with_its_client()
    {
        using var observer = await engram.ConnectAsync();
        var before = Clients((string)(await observer.CallAsync("INFO", "clients"))!);
        var blocked = await engram.ConnectAsync();
        await blocked.SendRawAsync(RespClient.Encode("WAIT", "1", "0"));
        var during = await EventuallyAsync(observer, c => c.Blocked == before.Blocked + 1); // connected and blocked

        // The connected count is shared with the fixture's other clients, whose closes may still land (a full test run
        // saw one between the two reads): the blocked count, which only this client moves, is the test's measure.
        blocked.Dispose();
        var after = await EventuallyAsync(observer, c => c.Blocked == before.Blocked && c.Connected < during.Connected);
        after.Blocked.Should().Be(before.Blocked, "the wait ended with its client");
    }

    /// <summary>The idle sweep closes a silent client, and leaves one that waits in WAIT (as Redis's idle time-out leaves blocked clients).</summary>
    [Fact]
    public async Task The_idle_sweep_leaves_a_blocked_wait()
    {
        await using var server = await EngramServer.StartAsync(Backend, o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.IdleTimeoutSeconds = 1;
        });
        var port = server.RespPort;
        using var idle = await RespClient.ConnectAsync(port);
        using var blocked = await RespClient.ConnectAsync(port);
        await blocked.SendRawAsync(RespClient.Encode("WAIT", "1", "0"));
        idle.IsClosedByServer().Should().BeTrue("a client silent for over a second is closed");

        // The closed one leaves the listener's count once its connection has wound down. The sweep runs every 0.25 s: over
        // the next 1.5 s it passes the waiting one over several times. The counts are read from the listener itself: a client
        // asking INFO would have to stay under the 1 s idle time-out itself, which a loaded test machine cannot promise.
        var listener = server.Services.GetRequiredService<Engram.Server.Resp.RespListener>();
        var waited = Stopwatch.StartNew();
        while (listener.ConnectionCount != 1 && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20);
        }
        for (var look = 0; look < 8; look++)
        {
            await Task.Delay(200);
            (listener.ConnectionCount, listener.BlockedCount).Should().Be((1, 1), "the waiting client is still connected, and blocked");
        }
    }

    private static async Task<(long Connected, long Blocked)> EventuallyAsync(RespClient observer, Func<(long Connected, long Blocked), bool> done)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var clients = Clients((string)(await observer.CallAsync("INFO", "clients"))!);
            if (done(clients) || waited.Elapsed > TimeSpan.FromSeconds(10))
            {
                done(clients).Should().BeTrue($"INFO clients reached the expected state within 10 s (it says {clients})");
                return clients;
            }
            await Task.Delay(20);
        }
    }

    private static (long Connected, long Blocked) Clients(string info) => (Field(info, "connected_clients"), Field(info, "blocked_clients"));

    private static long Field(string info, string name) =>
        long.Parse(info.Split("\r\n").Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..],
            System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>With full durability every acknowledged write was synced first: WAITAOF answers 1 at once, even for numlocal 0.</summary>
    [Fact]
    public async Task Waitaof_with_full_durability_answers_at_once()
    {
        await using var server = await EngramServer.StartAsync(Backend, o =>
        {
            RespServerFixture.Configure(o);
            o.KeyValue.Durability = WriteDurability.Full;
        });
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        (await client.CallAsync("SET", "waitaof:full", "1")).Should().Be("+OK");
        (await client.CallAsync("WAITAOF", "0", "0", "0")).Should().BeEquivalentTo(new object?[] { 1L, 0L }, o => o.WithStrictOrdering());
        (await client.CallAsync("WAITAOF", "1", "0", "0")).Should().BeEquivalentTo(new object?[] { 1L, 0L }, o => o.WithStrictOrdering());
    }

    protected abstract Backend Backend { get; }

    protected static object?[] ReadAll(RespClient client, int count) => [.. Enumerable.Range(0, count).Select(_ => client.Read())];
}

public sealed class RespWaitTests(RespServerFixture engram, RedisReferenceFixture reference)
    : RespWaitScenarios(engram, reference), IClassFixture<RespServerFixture>, IClassFixture<RedisReferenceFixture>
{
    protected override Backend Backend => Backend.Sqlite;

    /// <summary>
    /// Relaxed writes are acknowledged before any sync of the WAL; WAITAOF 0 does not sync (and so answers 0), WAITAOF 1
    /// syncs once, after the writes sent before it in the same pipeline, whose replies come first.
    /// </summary>
    [Fact]
    public async Task Waitaof_one_syncs_the_relaxed_writes_before_it()
    {
        var store = (SqliteMemoryStore)Engram.Server.Services.GetRequiredService<IMemoryStore>();
        using var client = await Engram.ConnectAsync();
        (await client.CallAsync("SET", "waitaof:warm", "0")).Should().Be("+OK");
        var syncs = store.WalSyncs;
        (await client.CallAsync("SET", "waitaof:a", "1")).Should().Be("+OK");
        (await client.CallAsync("INCR", "waitaof:n")).Should().Be(1L);
        store.WalSyncs.Should().Be(syncs, "relaxed writes are acknowledged without a sync");
        (await client.CallAsync("WAITAOF", "0", "0", "0")).Should().BeEquivalentTo(new object?[] { 0L, 0L }, o => o.WithStrictOrdering());
        store.WalSyncs.Should().Be(syncs, "numlocal 0 does not wait for the disk");

        // One pipeline: the writes, then WAITAOF; the replies keep their order and the sync comes after the writes.
        await client.SendRawAsync([.. RespClient.Encode("SET", "waitaof:b", "2"), .. RespClient.Encode("DEL", "waitaof:a"),
            .. RespClient.Encode("WAITAOF", "1", "0", "0"), .. RespClient.Encode("GET", "waitaof:b")]);
        ReadAll(client, 4).Should().BeEquivalentTo(new object?[] { "+OK", 1L, new object?[] { 1L, 0L }, "2" }, o => o.WithStrictOrdering());
        store.WalSyncs.Should().BeGreaterThan(syncs, "WAITAOF 1 syncs the WAL");
    }
}

public sealed class RespWaitPostgresTests(RespPostgresFixture engram, RedisReferenceFixture reference)
    : RespWaitScenarios(engram, reference), IClassFixture<RespPostgresFixture>, IClassFixture<RedisReferenceFixture>
{
    protected override Backend Backend => Backend.Postgres;

    /// <summary>WAITAOF 1 commits with full durability after the relaxed writes: the WAL is flushed past the last one's commit.</summary>
    [Fact]
    public async Task Waitaof_one_flushes_the_wal_past_the_relaxed_writes()
    {
        using var client = await Engram.ConnectAsync();
        (await client.CallAsync("SET", "waitaof:pg", "1")).Should().Be("+OK");
        var postgres = await PostgresServer.GetAsync();
        await using var connection = new NpgsqlConnection(postgres.ConnectionString("postgres") + ";Pooling=false");
        await connection.OpenAsync();
        await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection);
        var written = (string)(await lsn.ExecuteScalarAsync())!;
        (await client.CallAsync("WAITAOF", "1", "0", "0")).Should().BeEquivalentTo(new object?[] { 1L, 0L }, o => o.WithStrictOrdering());
        await using var flushed = new NpgsqlCommand("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", connection) { Parameters = { new() { Value = written } } };
        ((bool)(await flushed.ExecuteScalarAsync())!).Should().BeTrue("the WAL is flushed past every commit before WAITAOF");
    }
}
