using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Resp;

/// <summary>
/// MULTI / EXEC / DISCARD / WATCH on both stores. Atomicity is checked the way it can fail: concurrent transfers
/// between two keys while other clients read both in transactions (a reader that sees a transfer half done gets a
/// different sum), and optimistic WATCH loops from many clients (a lost update shows in the final count). Then the
/// Redis semantics: a queueing error discards the transaction, a run-time error does not undo the others, a watched
/// key written by anyone (RESP or REST) makes EXEC write nothing, and roles hold inside a transaction.
/// </summary>
public sealed class RespTransactionTests
{
    private const int Total = 1_000;

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Transactions_are_atomic_and_isolated_and_watch_refuses_lost_updates(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        var clients = new RespClient[12];
        for (var i = 0; i < clients.Length; i++)
        {
            clients[i] = await RespClient.ConnectAsync(port);
        }
        try
        {
            await TransfersKeepTheSumForEveryReaderAsync(clients);
            await WatchLoopsLoseNoIncrementAsync(clients);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>8 clients move 1 from a to b 25 times each in MULTI/EXEC; 4 read both in MULTI/EXEC meanwhile: a + b is always the total.</summary>
    private static async Task TransfersKeepTheSumForEveryReaderAsync(RespClient[] clients)
    {
        (await clients[0].CallAsync("MSET", "bank:a", Total.ToString(System.Globalization.CultureInfo.InvariantCulture), "bank:b", "0")).Should().Be("+OK");
        using var done = new CancellationTokenSource();
        var sums = new List<long>();
        var readers = clients.Skip(8).Select(client => Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                (await client.CallAsync("MULTI")).Should().Be("+OK");
                (await client.CallAsync("GET", "bank:a")).Should().Be("+QUEUED");
                (await client.CallAsync("GET", "bank:b")).Should().Be("+QUEUED");
                var both = (object?[])(await client.CallAsync("EXEC"))!;
                lock (sums)
                {
                    sums.Add(long.Parse((string)both[0]!) + long.Parse((string)both[1]!));
                }
            }
        })).ToList();
        await Task.WhenAll(clients.Take(8).Select(client => Task.Run(async () =>
        {
            for (var r = 0; r < 25; r++)
            {
                (await client.CallAsync("MULTI")).Should().Be("+OK");
                (await client.CallAsync("DECRBY", "bank:a", "1")).Should().Be("+QUEUED");
                (await client.CallAsync("INCRBY", "bank:b", "1")).Should().Be("+QUEUED");
                var replies = (object?[])(await client.CallAsync("EXEC"))!;
                replies.Should().HaveCount(2);
                ((long)replies[0]! + (long)replies[1]!).Should().Be(Total, "the transfer's own replies are one state");
            }
        })));
        await done.CancelAsync();
        await Task.WhenAll(readers);
        sums.Should().NotBeEmpty().And.OnlyContain(s => s == Total, "no reader sees a transfer half done");
        (await clients[0].CallAsync("GET", "bank:a")).Should().Be((Total - 200).ToString(System.Globalization.CultureInfo.InvariantCulture));
        (await clients[0].CallAsync("GET", "bank:b")).Should().Be("200");
    }

    /// <summary>10 clients add themselves to one JSON list 10 times each with WATCH/GET/MULTI/SET/EXEC, retrying on a null EXEC.</summary>
    private static async Task WatchLoopsLoseNoIncrementAsync(RespClient[] clients)
    {
        const string key = "shared:list";
        (await clients[0].CallAsync("SET", key, "[]")).Should().Be("+OK");
        await Task.WhenAll(clients.Take(10).Select((client, c) => Task.Run(async () =>
        {
            for (var r = 0; r < 10; r++)
            {
                while (true)
                {
                    (await client.CallAsync("WATCH", key)).Should().Be("+OK");
                    var list = JsonSerializer.Deserialize<List<string>>((string)(await client.CallAsync("GET", key))!)!;
                    list.Add($"c{c}-r{r}");
                    (await client.CallAsync("MULTI")).Should().Be("+OK");
                    (await client.CallAsync("SET", key, JsonSerializer.Serialize(list))).Should().Be("+QUEUED");
                    var result = await client.CallAsync("EXEC");
                    if (result is object?[] replies)
                    {
                        replies.Should().Equal("+OK");
                        break;
                    }
                    result.Should().BeNull("EXEC of a transaction whose watched key moved answers a null array");
                }
            }
        })));
        var final = JsonSerializer.Deserialize<List<string>>((string)(await clients[0].CallAsync("GET", key))!)!;
        final.Should().HaveCount(100).And.OnlyHaveUniqueItems("every add landed once: none lost to a concurrent one");
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Errors_discard_and_watch_follow_redis(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        using var other = await RespClient.ConnectAsync(port);

        // A queueing error (arity, unknown command, a command that is not a transaction command) discards all of it.
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "t:a", "1")).Should().Be("+QUEUED");
        (await client.CallAsync("SCRIPT", "FLUSH")).Should().BeOfType<string>().Which.Should().StartWith("-ERR 'script' cannot run inside MULTI");
        (await client.CallAsync("EXEC")).Should().Be("-EXECABORT Transaction discarded because of previous errors.");
        (await client.CallAsync("EXISTS", "t:a")).Should().Be(0L);

        // A run-time error answers in its place and the other commands stay written.
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "t:a", "text")).Should().Be("+QUEUED");
        (await client.CallAsync("INCR", "t:a")).Should().Be("+QUEUED");
        (await client.CallAsync("SET", "t:b", "2", "EX", "100")).Should().Be("+QUEUED");
        (await client.CallAsync("TTL", "t:b")).Should().Be("+QUEUED");
        (await client.CallAsync("GET", "t:a")).Should().Be("+QUEUED");
        ((object?[])(await client.CallAsync("EXEC"))!).Should().Equal("+OK", "-ERR value is not an integer or out of range", "+OK", 100L, "text");

        // DISCARD writes nothing; nothing queued is visible to others before EXEC.
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "t:c", "3")).Should().Be("+QUEUED");
        (await other.CallAsync("GET", "t:c")).Should().BeNull();
        (await client.CallAsync("DISCARD")).Should().Be("+OK");
        (await client.CallAsync("GET", "t:c")).Should().BeNull();

        // WATCH: another client's write, a REST write, a delete of a missing key's brief value, or our own write all abort.
        (await client.CallAsync("WATCH", "t:a")).Should().Be("+OK");
        (await other.CallAsync("SET", "t:a", "theirs")).Should().Be("+OK");
        await ExecAbortsAsync(client, "t:a");
        (await client.CallAsync("GET", "t:a")).Should().Be("theirs");

        (await client.CallAsync("WATCH", "t:a")).Should().Be("+OK");
        (await server.Client.PutAsJsonAsync("/v1/kv/t:a", new { value = "from rest" })).EnsureSuccessStatusCode();
        await ExecAbortsAsync(client, "t:a");

        (await client.CallAsync("WATCH", "t:none")).Should().Be("+OK");
        (await other.CallAsync("SET", "t:none", "1")).Should().Be("+OK");
        (await other.CallAsync("DEL", "t:none")).Should().Be(1L);
        await ExecAbortsAsync(client, "t:none");

        (await client.CallAsync("WATCH", "t:a")).Should().Be("+OK");
        (await client.CallAsync("EXPIRE", "t:a", "500")).Should().Be(1L);
        await ExecAbortsAsync(client, "t:a");

        // Unmoved, UNWATCHed or DISCARDed watches let EXEC run.
        (await client.CallAsync("WATCH", "t:a", "t:b")).Should().Be("+OK");
        (await other.CallAsync("GET", "t:a")).Should().Be("from rest");
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("GETDEL", "t:b")).Should().Be("+QUEUED");
        ((object?[])(await client.CallAsync("EXEC"))!).Should().Equal("2");
        (await client.CallAsync("WATCH", "t:a")).Should().Be("+OK");
        (await client.CallAsync("UNWATCH")).Should().Be("+OK");
        (await other.CallAsync("SET", "t:a", "again")).Should().Be("+OK");
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("GET", "t:a")).Should().Be("+QUEUED");
        ((object?[])(await client.CallAsync("EXEC"))!).Should().Equal("again");

        // The transaction's writes have their history, as any write.
        var history = await server.Client.GetFromJsonAsync<JsonElement>("/v1/kv/t:a?history=true");
        history.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event").GetString()).Should()
            .Equal("created", "updated", "updated", "ttl_changed", "updated");
    }

    private static async Task ExecAbortsAsync(RespClient client, string key)
    {
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", key, "mine")).Should().Be("+QUEUED");
        (await client.CallAsync("EXEC")).Should().BeNull("a watched key moved");
        (await client.CallAsync("GET", key)).Should().NotBe("mine");
    }

    [Fact]
    public async Task Roles_hold_and_a_transaction_is_bounded()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        var writerKey = await server.CreateKeyAsync("acme", Role.Write);
        var readerKey = await server.CreateKeyAsync("acme", Role.Read);
        using var writer = await RespClient.ConnectAsync(port);
        (await writer.CallAsync("AUTH", writerKey)).Should().Be("+OK");
        using var reader = await RespClient.ConnectAsync(port);
        (await reader.CallAsync("AUTH", readerKey)).Should().Be("+OK");
        using var anonymous = await RespClient.ConnectAsync(port);

        (await writer.CallAsync("SET", "r:a", "1")).Should().Be("+OK");
        (await reader.CallAsync("MULTI")).Should().Be("+OK");
        (await reader.CallAsync("GET", "r:a")).Should().Be("+QUEUED");
        (await reader.CallAsync("SET", "r:a", "2")).Should().Be("+QUEUED");
        var replies = (object?[])(await reader.CallAsync("EXEC"))!;
        replies[0].Should().Be("1");
        replies[1].Should().BeOfType<string>().Which.Should().StartWith("-NOPERM ");
        (await writer.CallAsync("GET", "r:a")).Should().Be("1");

        (await anonymous.CallAsync("MULTI")).Should().Be("-NOAUTH Authentication required.");
        (await anonymous.CallAsync("WATCH", "r:a")).Should().Be("-NOAUTH Authentication required.");

        // Past the queue's bound (64 MB of arguments) the transaction is discarded, and the connection goes on.
        (await writer.CallAsync("MULTI")).Should().Be("+OK");
        var megabyte = new string('x', 1024 * 1024 - 256);
        var batch = Enumerable.Range(0, 65).SelectMany(i => RespClient.Encode("SET", "r:big", megabyte)).ToArray();
        await writer.SendRawAsync(batch);
        for (var i = 0; i < 64; i++)
        {
            writer.Read().Should().Be("+QUEUED");
        }
        writer.Read().Should().BeOfType<string>().Which.Should().StartWith("-ERR the transaction is over 1000000 commands or 64 MB");
        (await writer.CallAsync("EXEC")).Should().Be("-EXECABORT Transaction discarded because of previous errors.");
        (await writer.CallAsync("EXISTS", "r:big")).Should().Be(0L);
        (await writer.CallAsync("PING")).Should().Be("+PONG");
    }

    /// <summary>
    /// What one transaction may hold is bounded, and going past a bound writes nothing and keeps the connection: its
    /// replies (16 MB), the values it reads (64 M characters), and the queued commands of all connections together (256 MB).
    /// </summary>
    [Fact]
    public async Task Replies_reads_and_queues_are_bounded()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        var big = new string('x', 1_000_000);
        var keys = Enumerable.Range(0, 70).Select(i => $"big:{i}").ToArray();
        foreach (var key in keys)
        {
            (await client.CallAsync("SET", key, big)).Should().Be("+OK");
        }

        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "marker", "1")).Should().Be("+QUEUED");
        for (var i = 0; i < 17; i++)
        {
            (await client.CallAsync("GET", keys[i])).Should().Be("+QUEUED");
        }
        (await client.CallAsync("EXEC")).Should().Be("-ERR its replies are over 16 MB; nothing was written");
        (await client.CallAsync("EXISTS", "marker")).Should().Be(0L);

        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "marker", "1")).Should().Be("+QUEUED");
        (await client.CallAsync(["MGET", .. keys[..17]])).Should().Be("+QUEUED");
        (await client.CallAsync("EXEC")).Should().Be("-ERR its replies are over 16 MB; nothing was written");
        (await client.CallAsync("EXISTS", "marker")).Should().Be(0L, "an MGET past the bound fails the transaction too");

        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "marker", "1")).Should().Be("+QUEUED");
        (await client.CallAsync(["EXISTS", .. keys])).Should().Be("+QUEUED");
        (await client.CallAsync("EXEC")).Should().Be("-ERR its keys hold over 64 M characters of values; a transaction reads less");
        (await client.CallAsync("EXISTS", "marker")).Should().Be(0L);
        (await client.CallAsync("PING")).Should().Be("+PONG");

        // 18 connections queue up to 15 MB each: the server-wide 256 MB runs out in the last one.
        var holders = new List<RespClient>();
        try
        {
            var value = new string('y', 1024 * 1024 - 64);
            string? refused = null;
            for (var c = 0; c < 18 && refused is null; c++)
            {
                var holder = await RespClient.ConnectAsync(port);
                holders.Add(holder);
                (await holder.CallAsync("MULTI")).Should().Be("+OK");
                for (var i = 0; i < 15 && refused is null; i++)
                {
                    if (await holder.CallAsync("SET", $"q:{c}:{i}", value) is string reply && reply != "+QUEUED")
                    {
                        refused = reply;
                    }
                }
            }
            refused.Should().Be("-ERR the server holds too many queued transaction commands; this transaction is discarded at EXEC");
            (await holders[^1].CallAsync("EXEC")).Should().Be("-EXECABORT Transaction discarded because of previous errors.");
            (await holders[0].CallAsync("DISCARD")).Should().Be("+OK");
            // What a discarded or closed transaction held is given back.
            holders[1].Dispose();
            object? queued = null;
            for (var attempt = 0; attempt < 100 && queued is not "+QUEUED"; attempt++)
            {
                await Task.Delay(attempt == 0 ? 0 : 100); // the server sees the closed connection a moment later
                (await holders[^1].CallAsync("MULTI")).Should().Be("+OK");
                queued = await holders[^1].CallAsync("SET", "q:last", value);
                (await holders[^1].CallAsync("DISCARD")).Should().Be("+OK");
            }
            queued.Should().Be("+QUEUED");
        }
        finally
        {
            foreach (var holder in holders)
            {
                holder.Dispose();
            }
        }
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Listings_inside_multi_see_the_store_with_the_transactions_own_changes(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        (await client.CallAsync("MSET", "ls:a", "1", "ls:b", "2", "ls:c", "3", "other", "x")).Should().Be("+OK");
        var paged = Enumerable.Range(0, 150).Select(i => $"ls:p:{i:D3}").ToList();
        (await client.CallAsync([.. new[] { "MSET" }.Concat(paged.SelectMany(k => new[] { k, "v" }))])).Should().Be("+OK");

        string[] queued =
        [
            "DBSIZE", "SET ls:d 4", "DEL ls:a", "KEYS ls:?", "DBSIZE", "DEL ls:p:005", "SET ls:p:150 v", "KEYS ls:p:*",
            "SCAN 0 MATCH ls:p:* COUNT 1000", "INFO keyspace", "CLIENT SETNAME tx", "CLIENT GETNAME", "OBJECT ENCODING ls:b", "EXISTS ls:a ls:d",
        ];
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        foreach (var command in queued)
        {
            (await client.CallAsync(command.Split(' '))).Should().Be("+QUEUED", command);
        }
        var replies = (object?[])(await client.CallAsync("EXEC"))!;
        replies.Should().HaveCount(queued.Length);
        replies[0].Should().Be(154L, "3 + 1 + 150 keys before the transaction's changes");
        replies[3].Should().BeOfType<object?[]>().Which.Should().BeEquivalentTo(new[] { "ls:b", "ls:c", "ls:d" }, "ls:a deleted and ls:d set before the KEYS");
        replies[4].Should().Be(154L, "one set, one deleted");
        var expectedPaged = paged.Where(k => k != "ls:p:005").Append("ls:p:150").ToList();
        replies[7].Should().BeOfType<object?[]>().Which.Should().BeEquivalentTo(expectedPaged);
        var scan = (object?[])replies[8]!;
        scan[0].Should().Be("0", "one page holds them all");
        scan[1].Should().BeOfType<object?[]>().Which.Should().BeEquivalentTo(expectedPaged);
        replies[9].Should().BeOfType<string>().Which.Should().Contain("db0:keys=154,");
        replies[10].Should().Be("+OK");
        replies[11].Should().Be("tx");
        replies[12].Should().Be("int");
        replies[13].Should().Be(1L);

        // Written as the transaction left them, and seen alike outside it.
        ((object?[])(await client.CallAsync("KEYS", "ls:?"))!).Should().BeEquivalentTo(new[] { "ls:b", "ls:c", "ls:d" });
        (await client.CallAsync("DBSIZE")).Should().Be(154L);
        (await client.CallAsync("CLIENT", "GETNAME")).Should().Be("tx");

        // SCAN pages inside transactions: every key once, the transaction's own new key included, its deleted one not.
        var seen = new List<string>();
        var cursor = "0";
        var pages = 0;
        do
        {
            (await client.CallAsync("MULTI")).Should().Be("+OK");
            (await client.CallAsync("SET", "ls:p:0405", "v")).Should().Be("+QUEUED");
            (await client.CallAsync("DEL", "ls:p:010")).Should().Be("+QUEUED");
            (await client.CallAsync("SCAN", cursor, "MATCH", "ls:p:*", "COUNT", "7")).Should().Be("+QUEUED");
            var page = (object?[])((object?[])(await client.CallAsync("EXEC"))!)[2]!;
            cursor = (string)page[0]!;
            seen.AddRange(((object?[])page[1]!).Cast<string>());
            pages++;
        }
        while (cursor != "0");
        pages.Should().BeGreaterThan(20);
        seen.Should().OnlyHaveUniqueItems().And.BeEquivalentTo(expectedPaged.Where(k => k != "ls:p:010").Append("ls:p:0405"));
    }
}
