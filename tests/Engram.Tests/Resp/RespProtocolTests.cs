using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Resp;

/// <summary>
/// The RESP endpoint over a bare socket: exact replies and error texts, pipelining, the bounded command
/// buffer, RESP3, and that RESP and REST are one store (a key written on one side reads on the other).
/// </summary>
public sealed class RespProtocolTests(RespServerFixture fixture) : IClassFixture<RespServerFixture>
{
    [Fact]
    public async Task StringCommands_ReplyAsRedisDoes()
    {
        using var c = await fixture.ConnectAsync();
        (await c.CallAsync("PING")).Should().Be("+PONG");
        (await c.CallAsync("SET", "p:s:1", "hello")).Should().Be("+OK");
        (await c.CallAsync("GET", "p:s:1")).Should().Be("hello");
        (await c.CallAsync("GET", "p:s:none")).Should().BeNull();
        (await c.CallAsync("SET", "p:s:1", "x", "NX")).Should().BeNull();
        (await c.CallAsync("SET", "p:s:1", "again", "XX", "GET")).Should().Be("hello");
        (await c.CallAsync("SET", "p:s:1", "px", "PX", "5000")).Should().Be("+OK");
        ((long)(await c.CallAsync("PTTL", "p:s:1"))!).Should().BeInRange(1, 5000);
        var at = DateTimeOffset.UtcNow.AddSeconds(100).ToUnixTimeSeconds();
        (await c.CallAsync("SET", "p:s:1", "exat", "EXAT", at.ToString())).Should().Be("+OK");
        ((long)(await c.CallAsync("TTL", "p:s:1"))!).Should().BeInRange(95, 100);
        (await c.CallAsync("GETEX", "p:s:1", "EX", "500")).Should().Be("exat");
        ((long)(await c.CallAsync("TTL", "p:s:1"))!).Should().BeInRange(495, 500);
        (await c.CallAsync("EXPIRE", "p:s:1", "50", "LT")).Should().Be(1L);
        (await c.CallAsync("PEXPIRE", "p:s:1", "60000", "GT")).Should().Be(1L);
        (await c.CallAsync("PERSIST", "p:s:1")).Should().Be(1L);
        (await c.CallAsync("TTL", "p:s:1")).Should().Be(-1L);
        (await c.CallAsync("EXPIREAT", "p:s:1", DateTimeOffset.UtcNow.AddSeconds(-5).ToUnixTimeSeconds().ToString())).Should().Be(1L);
        (await c.CallAsync("EXISTS", "p:s:1")).Should().Be(0L);
        (await c.CallAsync("PSETEX", "p:s:2", "90000", "v")).Should().Be("+OK");
        (await c.CallAsync("GETDEL", "p:s:2")).Should().Be("v");
        (await c.CallAsync("GETDEL", "p:s:2")).Should().BeNull();
        (await c.CallAsync("MSET", "p:m:1", "a", "p:m:2", "b")).Should().Be("+OK");
        (await c.CallAsync("MGET", "p:m:1", "p:m:none", "p:m:2")).Should().BeEquivalentTo(new object?[] { "a", null, "b" }, o => o.WithStrictOrdering());
        (await c.CallAsync("SET", "p:u:1", "naïve ✓ \"quoted\" \\ \t tab")).Should().Be("+OK");
        (await c.CallAsync("GET", "p:u:1")).Should().Be("naïve ✓ \"quoted\" \\ \t tab");
        (await c.CallAsync("STRLEN", "p:u:1")).Should().Be((long)Encoding.UTF8.GetByteCount("naïve ✓ \"quoted\" \\ \t tab"), "bytes, as GET returns them");

        var expires = DateTimeOffset.UtcNow.AddSeconds(300).ToUnixTimeMilliseconds();
        (await c.CallAsync("SET", "p:e:1", "v", "PXAT", expires.ToString())).Should().Be("+OK");
        (await c.CallAsync("PEXPIRETIME", "p:e:1")).Should().Be(expires);
        (await c.CallAsync("EXPIRETIME", "p:e:1")).Should().Be(expires / 1000);
        (await c.CallAsync("GETSET", "p:e:1", "w")).Should().Be("v");
        (await c.CallAsync("EXPIRETIME", "p:e:1")).Should().Be(-1L, "GETSET writes the default TTL, none here, as Redis drops the TTL");
    }

    [Fact]
    public async Task Counters_AndTheirErrors()
    {
        using var c = await fixture.ConnectAsync();
        (await c.CallAsync("INCR", "p:c:1")).Should().Be(1L);
        (await c.CallAsync("INCRBY", "p:c:1", "41")).Should().Be(42L);
        (await c.CallAsync("DECRBY", "p:c:1", "2")).Should().Be(40L);
        (await c.CallAsync("DECR", "p:c:1")).Should().Be(39L);
        (await c.CallAsync("GET", "p:c:1")).Should().Be("39");
        (await c.CallAsync("SET", "p:c:2", "12")).Should().Be("+OK");
        (await c.CallAsync("INCR", "p:c:2")).Should().Be(13L);
        (await c.CallAsync("SET", "p:c:3", "012")).Should().Be("+OK");
        (await c.CallAsync("INCR", "p:c:3")).Should().Be("-ERR value is not an integer or out of range");
        (await c.CallAsync("INCRBY", "p:c:2", "ten")).Should().Be("-ERR value is not an integer or out of range");
        (await c.CallAsync("SET", "p:c:4", long.MaxValue.ToString())).Should().Be("+OK");
        (await c.CallAsync("INCR", "p:c:4")).Should().Be("-ERR increment or decrement would overflow");
    }

    [Fact]
    public async Task Errors_HaveRedisTexts_AndKeepTheConnection()
    {
        using var c = await fixture.ConnectAsync();
        (await c.CallAsync("GET")).Should().Be("-ERR wrong number of arguments for 'get' command");
        (await c.CallAsync("set", "k")).Should().Be("-ERR wrong number of arguments for 'set' command");
        (await c.CallAsync("SET", "k", "v", "NX", "XX")).Should().Be("-ERR syntax error");
        (await c.CallAsync("SET", "k", "v", "EX", "0")).Should().Be("-ERR invalid expire time in 'set' command");
        (await c.CallAsync("SET", "k", "v", "EX", "soon")).Should().Be("-ERR value is not an integer or out of range");
        (await c.CallAsync("LPUSH", "list", "now")).Should().Be("-ERR unknown command 'LPUSH', with args beginning with: 'list' 'now' ");
        (await c.CallAsync("SELECT", "1")).Should().Be("-ERR DB index is out of range");
        (await c.CallAsync("SELECT", "0")).Should().Be("+OK");
        (await c.CallAsync("SCAN", "banana")).Should().Be("-ERR invalid cursor");
        (await c.CallAsync("SET", "bad\nkey", "v")).Should().BeOfType<string>().Which.Should().StartWith("-ERR ").And.Contain("control characters");
        (await c.CallAsync("CLIENT", "NOPE")).Should().Be("-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
        (await c.CallAsync("PING")).Should().Be("+PONG");
    }

    [Fact]
    public async Task PipelinedCommands_AreAnsweredInOrder_AndSeeEarlierWrites()
    {
        using var c = await fixture.ConnectAsync();
        var batch = new List<byte>();
        for (var i = 0; i < 200; i++)
        {
            batch.AddRange(RespClient.Encode("SET", $"p:pipe:{i % 7}", $"v{i}"));
            batch.AddRange(RespClient.Encode("GET", $"p:pipe:{i % 7}"));
            batch.AddRange(RespClient.Encode("INCR", "p:pipe:count"));
        }
        batch.AddRange(RespClient.Encode("BOGUS"));
        await c.SendRawAsync([.. batch]);
        for (var i = 0; i < 200; i++)
        {
            c.Read().Should().Be("+OK");
            c.Read().Should().Be($"v{i}");
            c.Read().Should().Be((long)(i + 1));
        }
        c.Read().Should().Be("-ERR unknown command 'BOGUS', with args beginning with: ");
    }

    [Fact]
    public async Task PipelinedSets_AreWrittenTogether_AndABadOneFailsAlone_InOrder()
    {
        using var c = await fixture.ConnectAsync();
        var http = fixture.Server.Client;
        // redis-benchmark's values hold backslashes and quotes; these also hold control characters.
        var values = new[] { "plain", "back\\slash \"quoted\"", "line\nbreak\ttab\u0001\u001f\u007f", "{\"json\":1}", "12", "héllo \\ wörld" };
        var batch = new List<byte>();
        for (var i = 0; i < values.Length; i++)
        {
            batch.AddRange(RespClient.Encode("SET", $"p:batch:{i}", values[i]));
        }
        batch.AddRange(RespClient.Encode("SET", new string('k', 600), "too long a key"));
        batch.AddRange(RespClient.Encode("SET", "p:batch:after", "ok", "EX", "100"));
        batch.AddRange(RespClient.Encode("SETNX", "p:batch:0", "not written"));
        batch.AddRange(RespClient.Encode("SET", "p:batch:last", "x"));
        for (var i = 0; i < values.Length; i++)
        {
            batch.AddRange(RespClient.Encode("GET", $"p:batch:{i}"));
        }
        await c.SendRawAsync([.. batch]);
        for (var i = 0; i < values.Length; i++)
        {
            c.Read().Should().Be("+OK");
        }
        c.Read().Should().BeOfType<string>().Which.Should().StartWith("-ERR the key is 600 UTF-8 bytes");
        c.Read().Should().Be("+OK");
        c.Read().Should().Be(0L);
        c.Read().Should().Be("+OK");
        for (var i = 0; i < values.Length; i++)
        {
            c.Read().Should().Be(values[i]);
        }
        (await c.CallAsync("TTL", "p:batch:after")).Should().BeOfType<long>().Which.Should().BeInRange(99, 100);

        // Writes of other kinds between the SETs keep their order in the store.
        var mixed = new List<byte>();
        mixed.AddRange(RespClient.Encode("SET", "p:order:k", "a"));
        mixed.AddRange(RespClient.Encode("DEL", "p:order:k"));
        mixed.AddRange(RespClient.Encode("SET", "p:order:k", "b"));
        mixed.AddRange(RespClient.Encode("SET", "p:order:n", "5"));
        mixed.AddRange(RespClient.Encode("INCR", "p:order:n"));
        mixed.AddRange(RespClient.Encode("SETEX", "p:order:n", "100", "10"));
        mixed.AddRange(RespClient.Encode("INCRBY", "p:order:n", "2"));
        mixed.AddRange(RespClient.Encode("SET", "p:order:s", "x"));
        mixed.AddRange(RespClient.Encode("SETNX", "p:order:s", "y"));
        mixed.AddRange(RespClient.Encode("MGET", "p:order:k", "p:order:n", "p:order:s"));
        await c.SendRawAsync([.. mixed]);
        foreach (var expected in new object?[] { "+OK", 1L, "+OK", "+OK", 6L, "+OK", 12L, "+OK", 0L })
        {
            c.Read().Should().Be(expected);
        }
        c.Read().Should().BeEquivalentTo(new object?[] { "b", "12", "x" });

        // The same texts over REST: a JSON string each (the integer as a number), escaped as the serializer escapes.
        for (var i = 0; i < values.Length; i++)
        {
            var item = await http.GetFromJsonAsync<System.Text.Json.JsonElement>($"/v1/kv/p:batch:{i}");
            var value = item.GetProperty("value");
            (value.ValueKind == System.Text.Json.JsonValueKind.Number ? value.GetRawText() : value.GetString()).Should().Be(values[i]);
        }
    }

    [Fact]
    public async Task APipelinedSet_AfterAWriteStillQueued_IsNotAcknowledgedAheadOfIt()
    {
        // A plain SET or INCR may be acknowledged through the key-value journal ahead of writes other clients queued, but
        // never ahead of its own connection's earlier write. The test holds the state lock, so the SET XX's writer group
        // cannot start before the others are handed over; a SET journaled past it would leave "6" at the end.
        var store = (SqliteMemoryStore)fixture.Server.Services.GetRequiredService<IMemoryStore>();
        using var c = await fixture.ConnectAsync();
        (await c.CallAsync("SET", "p:own:n", "1")).Should().Be("+OK");
        (await c.CallAsync("SET", "p:own:n", "5")).Should().Be("+OK"); // journaled: the key's state is in memory now
        var journaled = store.KvJournal!.Appended;
        using (new LockHolder(store.KvStateLock))
        {
            await c.SendRawAsync([.. RespClient.Encode("SET", "p:own:n", "6", "XX"), .. RespClient.Encode("SET", "p:own:n", "100"),
                .. RespClient.Encode("INCR", "p:own:n"), .. RespClient.Encode("GET", "p:own:n")]);
            await Task.Delay(200); // the server reads the pipeline meanwhile; an overtaking SET would wait here for the lock
        }
        c.Read().Should().Be("+OK");
        c.Read().Should().Be("+OK");
        c.Read().Should().Be(101L);
        c.Read().Should().Be("101");
        store.KvJournal.Appended.Should().Be(journaled, "the SET and INCR followed the connection's SET XX through the writer");
        (await c.CallAsync("GET", "p:own:n")).Should().Be("101");
    }

    [Theory]
    [InlineData("*01\r\n$4\r\nPING\r\n", "invalid multibulk length")]
    [InlineData("*+1\r\n$4\r\nPING\r\n", "invalid multibulk length")]
    [InlineData("*1\r\n$+4\r\nPING\r\n", "invalid bulk length")]
    [InlineData("*1\r\n$04\r\nPING\r\n", "invalid bulk length")]
    [InlineData("*2\r\n$4\r\nECHO\r\n$-0\r\n", "invalid bulk length")]
    public async Task A_length_header_redis_would_not_read_is_a_protocol_error(string raw, string error)
    {
        // Redis reads these numbers strictly (no sign, no leading zero, no "-0"); they had been taken.
        using var c = await fixture.ConnectAsync();
        await c.SendRawAsync(Encoding.ASCII.GetBytes(raw));
        c.Read().Should().Be("-ERR Protocol error: " + error);
        c.IsClosedByServer().Should().BeTrue();
    }

    /// <summary>
    /// Header lines ended by a CR without its LF (a client that ends lines with "\r" alone): the parser waited for an LF
    /// that never came, so the client waited for a reply forever. Redis answers a protocol error there (it skips the byte
    /// after the CR, whatever it is, and then finds no '$'); Engram answers one as soon as the byte after the CR is not
    /// an LF, and closes, as for every protocol error. Whole (one read) and cut in pieces (the sequence parser).
    /// </summary>
    [Theory]
    [InlineData("*1\r$4\rPING\r", "invalid multibulk length", 0)]
    [InlineData("*1\rX$4\r\nPING\r\n", "invalid multibulk length", 0)]
    [InlineData("*1\r\n$4\rPING\r", "invalid bulk length", 0)]
    [InlineData("*1\r$4\rPING\r", "invalid multibulk length", 1)]
    [InlineData("*1\r\n$4\rPING\r", "invalid bulk length", 1)]
    [InlineData("*1\r$4\rPING\r", "invalid multibulk length", 2)]
    [InlineData("*1\r\n$4\rPING\r", "invalid bulk length", 2)]
    public async Task A_header_line_ended_by_a_bare_CR_is_a_protocol_error_not_a_wait(string raw, string error, int pieces)
    {
        using var c = await fixture.ConnectAsync();
        var bytes = Encoding.ASCII.GetBytes(System.Text.RegularExpressions.Regex.Unescape(raw));
        var echo = new string('e', 5000);
        switch (pieces)
        {
            case 0:
                await c.SendRawAsync(bytes);
                break;
            case 1:
                // One byte at a time up to the one after the bare CR (bytes sent after the close could reset the
                // connection before the reply is read): one read per byte, or several joined, the parser sees every cut.
                var cr = Enumerable.Range(0, bytes.Length - 1).First(i => bytes[i] == '\r' && bytes[i + 1] != '\n');
                foreach (var b in bytes[..(cr + 2)])
                {
                    await c.SendRawAsync([b]);
                }
                break;
            default:
                // Behind a command longer than a buffer segment (4 KB), so the header is read from a buffer of two
                // segments, through the sequence parser.
                await c.SendRawAsync([.. RespClient.Encode("ECHO", echo), .. bytes]);
                c.Read().Should().Be(echo);
                break;
        }
        c.Read().Should().Be("-ERR Protocol error: " + error);
        c.IsClosedByServer().Should().BeTrue();
    }

    /// <summary>
    /// Line endings as redis-server 7 takes them, compared byte for byte: inline commands end in LF or CRLF (a CR inside
    /// an inline line separates arguments); a header line ended by a bare LF is a protocol error (Redis waits for a CR
    /// that may never come: Engram answers at once), as is a bulk string whose payload is not followed by CRLF (Redis
    /// skips the two bytes there unread, so "PINGxx" runs as PING and "PING\n*1" turns the next command's header into
    /// inline commands; Engram refuses it, and nothing of it runs).
    /// </summary>
    [Fact]
    public async Task Line_endings_are_read_as_redis_reads_them_or_refused()
    {
        using var inline = await fixture.ConnectAsync();
        await inline.SendRawAsync("SET p:lf v\nGET p:lf\nPING\rPING\r\n"u8.ToArray());
        inline.Read().Should().Be("+OK");
        inline.Read().Should().Be("v");
        inline.Read().Should().Be("PING", "a CR inside an inline line separates arguments, as in Redis");

        foreach (var (raw, error) in new[]
        {
            ("*1\n$4\nPING\n", "invalid multibulk length"),
            ("*1\r\n$4\nPING\r\n", "invalid bulk length"),
            ("*3\r\n$3\r\nSET\r\n$4\r\np:xx\r\n$1\r\nvxx*1\r\n$4\r\nPING\r\n", "expected CRLF after a bulk string"),
            ("*3\r\n$3\r\nSET\r\n$4\r\np:xx\r\n$1\r\nv\n*1\r\n$4\r\nPING\r\n", "expected CRLF after a bulk string"),
        })
        {
            using var c = await fixture.ConnectAsync();
            await c.SendRawAsync(Encoding.ASCII.GetBytes(raw));
            c.Read().Should().Be("-ERR Protocol error: " + error, raw);
            c.IsClosedByServer().Should().BeTrue();
        }
        (await inline.CallAsync("EXISTS", "p:xx")).Should().Be(0L, "a command whose bulk string was not ended by CRLF did not run");
    }

    [Fact]
    public async Task AHugeBulkHeader_IsAnErrorAndACloseWithoutBuffering()
    {
        using var c = await fixture.ConnectAsync();
        await c.SendRawAsync(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n"));
        c.Read().Should().Be("-ERR Protocol error: invalid bulk length");
        c.IsClosedByServer().Should().BeTrue();

        using var many = await fixture.ConnectAsync();
        await many.SendRawAsync(Encoding.ASCII.GetBytes("*100000000\r\n"));
        many.Read().Should().Be("-ERR Protocol error: invalid multibulk length");
        many.IsClosedByServer().Should().BeTrue();

        using var other = await fixture.ConnectAsync();
        (await other.CallAsync("PING")).Should().Be("+PONG");
    }

    [Fact]
    public async Task ACommandOfManyArguments_ArrivingInChunks_RunsAsOneCommand()
    {
        // A DEL of 5,000 keys, as a client library sends it (redis-py's delete(*keys)): over Redis's old 4,096-argument
        // bound here, and long enough to arrive over many reads. It is sent in 997-byte pieces with pauses, so
        // arguments and their headers are cut everywhere; before it, a script that runs at the end of the first read.
        using var c = await fixture.ConnectAsync();
        var keys = Enumerable.Range(0, 5_000).Select(i => $"p:many:{i}").ToArray();
        (await c.CallAsync(["MSET", .. keys.SelectMany(k => new[] { k, "v" + k })])).Should().Be("+OK", "an MSET of 5,000 keys is one command, as in Redis");
        (await c.CallAsync("GET", keys[4_321])).Should().Be("v" + keys[4_321]);
        (await c.CallAsync(["EXISTS", .. keys, keys[0], "p:many:absent"])).Should().Be(5_001L, "a key named twice counts twice, as in Redis");
        var script = RespClient.Encode("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "p:many:script", "ran");
        var del = RespClient.Encode(["DEL", .. keys, "p:many:absent"]);
        var bytes = script.Concat(del).Concat(RespClient.Encode("GET", "p:many:script")).ToArray();
        for (var at = 0; at < bytes.Length; at += 997)
        {
            await c.SendRawAsync(bytes[at..Math.Min(at + 997, bytes.Length)]);
            if (at % (997 * 20) == 0)
            {
                await Task.Delay(20);
            }
        }
        c.Read().Should().Be("+OK");
        c.Read().Should().Be(5_000L, "every key named was deleted but the one that never was");
        c.Read().Should().Be("ran");
        (await c.CallAsync("EXISTS", keys[0], keys[4_999])).Should().Be(0L);
        (await c.CallAsync("SET", "p:many:twice", "v")).Should().Be("+OK");
        (await c.CallAsync("DEL", "p:many:twice", "p:many:twice")).Should().Be(1L, "a key named twice is deleted once");

        // An MGET of 20,000 keys (20,001 arguments, more than a REST batch may have) in one write: the replies in order.
        var mget = await c.CallAsync(["MGET", .. Enumerable.Range(0, 20_000).Select(i => i == 7 ? "p:many:script" : $"p:many:none:{i}")]);
        mget.Should().BeOfType<object?[]>("the reply was {0}", mget);
        var values = (object?[])mget!;
        values.Should().HaveCount(20_000);
        values[7].Should().Be("ran");
        values.Count(v => v is null).Should().Be(19_999);
    }

    [Fact]
    public async Task RespAndRest_AreOneStore()
    {
        using var c = await fixture.ConnectAsync();
        var http = fixture.Server.Client;
        (await c.CallAsync("SET", "swarm:agent:a1", "running", "EX", "300")).Should().Be("+OK");
        var item = await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/swarm:agent:a1");
        item.GetProperty("value").GetString().Should().Be("running");
        item.GetProperty("ttl_seconds").GetInt64().Should().BeInRange(290, 300);

        (await c.CallAsync("SET", "swarm:count:a1", "41")).Should().Be("+OK");
        (await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/swarm:count:a1")).GetProperty("value").GetInt64().Should().Be(41);
        using (var incr = await http.PostAsync("/v1/kv/swarm:count:a1/incr", JsonContent.Create(new { by = 1 })))
        {
            incr.StatusCode.Should().Be(HttpStatusCode.OK);
        }
        (await c.CallAsync("GET", "swarm:count:a1")).Should().Be("42");

        using (var put = await http.PutAsJsonAsync("/v1/kv/swarm:plan:a1", new { value = new { steps = new[] { 1, 2 }, done = false } }))
        {
            put.IsSuccessStatusCode.Should().BeTrue();
        }
        (await c.CallAsync("GET", "swarm:plan:a1")).Should().Be("{\"steps\":[1,2],\"done\":false}");

        // The RESP writes are in the key's history, written by the same code path as REST's.
        (await c.CallAsync("SET", "swarm:agent:a1", "done")).Should().Be("+OK");
        var history = await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/swarm:agent:a1?history=true");
        history.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("value").GetString()).Should().Equal("running", "done");
        history.GetProperty("items")[0].GetProperty("actor").GetString().Should().Be("resp");

        // Tenant naming: the three-segment key is stored with the tenant inserted, and SCAN MATCH finds it as written.
        (await c.CallAsync("SCAN", "0", "MATCH", "swarm:agent:*", "COUNT", "100")).Should().BeEquivalentTo(new object?[] { "0", new object?[] { "swarm:agent:a1" } });
        using var deleted = await http.DeleteAsync("/v1/kv/swarm:agent:a1");
        deleted.StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await c.CallAsync("EXISTS", "swarm:agent:a1")).Should().Be(0L);
    }

    [Fact]
    public async Task Incr_TakesAnIntegerThatRestWroteAsAJsonString_AsRedisReadsIt()
    {
        using var c = await fixture.ConnectAsync();
        var http = fixture.Server.Client;
        foreach (var (key, value) in new[] { ("p:txt:a", "123"), ("p:txt:b", "-7"), ("p:txt:c", "10"), ("p:txt:d", "007"), ("p:txt:e", "-0"), ("p:txt:f", "+1"), ("p:txt:g", "1.5"), ("p:txt:h", "99999999999999999999") })
        {
            using var put = await http.PutAsJsonAsync($"/v1/kv/{key}", new { value });
            put.IsSuccessStatusCode.Should().BeTrue();
        }
        (await c.CallAsync("GET", "p:txt:a")).Should().Be("123");
        (await c.CallAsync("INCR", "p:txt:a")).Should().Be(124L);
        (await c.CallAsync("DECRBY", "p:txt:b", "3")).Should().Be(-10L);
        (await c.CallAsync("MULTI")).Should().Be("+OK");
        (await c.CallAsync("INCR", "p:txt:c")).Should().Be("+QUEUED");
        ((object?[])(await c.CallAsync("EXEC"))!).Should().Equal(11L);
        (await c.CallAsync("EVAL", "return redis.call('INCRBY', KEYS[1], 5)", "1", "p:txt:c")).Should().Be(16L);
        // What Redis refuses as an integer stays refused, and the value is kept.
        foreach (var key in new[] { "p:txt:d", "p:txt:e", "p:txt:f", "p:txt:g", "p:txt:h" })
        {
            (await c.CallAsync("INCR", key)).Should().Be("-ERR value is not an integer or out of range", key);
        }
        (await c.CallAsync("GET", "p:txt:d")).Should().Be("007");

        // JSON's number -0 reads as the text "-0" over RESP, which Redis refuses too; REST's incr does JSON's arithmetic.
        foreach (var key in new[] { "p:num:z", "p:num:y" })
        {
            using var put = await http.PutAsync($"/v1/kv/{key}", new StringContent("{\"value\": -0}", System.Text.Encoding.UTF8, "application/json"));
            put.IsSuccessStatusCode.Should().BeTrue();
        }
        (await c.CallAsync("GET", "p:num:z")).Should().Be("-0");
        (await c.CallAsync("INCR", "p:num:z")).Should().Be("-ERR value is not an integer or out of range");
        (await c.CallAsync("EVAL", "return redis.pcall('INCRBY', KEYS[1], 2).err", "1", "p:num:z")).Should().Be("ERR value is not an integer or out of range");
        using (var restZero = await http.PostAsync("/v1/kv/p:num:y/incr", JsonContent.Create(new { by = 1 })))
        {
            restZero.StatusCode.Should().Be(HttpStatusCode.OK);
        }
        (await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/p:num:y")).GetProperty("value").GetInt64().Should().Be(1);

        // The result is a number, as every INCR writes; REST's own incr keeps JSON's types and refuses a string.
        (await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/kv/p:txt:a")).GetProperty("value").GetInt64().Should().Be(124);
        using (var put = await http.PutAsJsonAsync("/v1/kv/p:txt:r", new { value = "5" }))
        {
            put.IsSuccessStatusCode.Should().BeTrue();
        }
        using var restIncr = await http.PostAsync("/v1/kv/p:txt:r/incr", JsonContent.Create(new { by = 1 }));
        restIncr.StatusCode.Should().Be(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Scan_PagesWithNumericCursors_AndKeysAndDbsizeSeeTheSameKeys()
    {
        using var c = await fixture.ConnectAsync();
        for (var i = 0; i < 25; i++)
        {
            (await c.CallAsync("SET", $"scan:item:{i:D2}", "x")).Should().Be("+OK");
        }
        var seen = new List<string>();
        var cursor = "0";
        var pages = 0;
        do
        {
            var reply = (object?[])(await c.CallAsync("SCAN", cursor, "MATCH", "scan:item:*", "COUNT", "10"))!;
            cursor = (string)reply[0]!;
            seen.AddRange(((object?[])reply[1]!).Cast<string>());
            pages++;
        }
        while (cursor != "0");
        pages.Should().Be(3);
        seen.Should().HaveCount(25).And.OnlyHaveUniqueItems();
        ((object?[])(await c.CallAsync("KEYS", "scan:item:1*"))!).Should().HaveCount(10);
        ((long)(await c.CallAsync("DBSIZE"))!).Should().BeGreaterThanOrEqualTo(25);
        (await c.CallAsync("TYPE", "scan:item:01")).Should().Be("+string");
        (await c.CallAsync("DEL", "scan:item:00", "scan:item:01", "scan:item:nope")).Should().Be(2L);
    }

    [Fact]
    public async Task Hello3_SwitchesToResp3_AndServerCommandsAnswer()
    {
        using var c = await fixture.ConnectAsync();
        var hello = (object?[])(await c.CallAsync("HELLO", "3", "SETNAME", "agent-7"))!;
        hello[0].Should().Be("server");
        hello[5].Should().Be(3L);
        (await c.CallAsync("GET", "hello:none")).Should().BeNull();
        (await c.CallAsync("CLIENT", "GETNAME")).Should().Be("agent-7");
        var id = (long)(await c.CallAsync("CLIENT", "ID"))!;
        using (var other = await fixture.ConnectAsync())
        {
            (await other.CallAsync("CLIENT", "SETNAME", "agent-8")).Should().Be("+OK");
            var list = (string)(await c.CallAsync("CLIENT", "LIST"))!;
            list.Should().Contain($"id={id} ").And.Contain(" name=agent-7 ").And.Contain(" name=agent-8 ").And.Contain(" cmd=client|list ").And.EndWith("\n");
            // Filters: every connection is a normal one; by id, only the ones named.
            ((string)(await c.CallAsync("CLIENT", "LIST", "TYPE", "NORMAL"))!).Should().Contain(" name=agent-7 ").And.Contain(" name=agent-8 ");
            ((string)(await c.CallAsync("CLIENT", "LIST", "TYPE", "replica"))!).Should().BeEmpty();
            var mine = (string)(await c.CallAsync("CLIENT", "LIST", "ID", id.ToString(CultureInfo.InvariantCulture), "999999"))!;
            mine.Should().StartWith($"id={id} ").And.Contain(" name=agent-7 ").And.NotContain("agent-8");
            ((string)(await c.CallAsync("CLIENT", "INFO"))!).Should().StartWith($"id={id} ").And.Contain(" resp=3 ").And.Contain(" cmd=client|info ");
        }
        (await c.CallAsync("SET", "object:int", "42")).Should().Be("+OK");
        (await c.CallAsync("SET", "object:short", "hello")).Should().Be("+OK");
        (await c.CallAsync("SET", "object:long", new string('x', 100))).Should().Be("+OK");
        (await c.CallAsync("OBJECT", "ENCODING", "object:int")).Should().Be("int");
        (await c.CallAsync("OBJECT", "ENCODING", "object:short")).Should().Be("embstr");
        (await c.CallAsync("OBJECT", "ENCODING", "object:long")).Should().Be("raw");
        (await c.CallAsync("OBJECT", "ENCODING", "object:none")).Should().BeNull();
        ((string)(await c.CallAsync("OBJECT", "FREQ", "object:int"))!).Should().StartWith("-ERR unknown subcommand");
        (await c.CallAsync("HELLO", "4")).Should().Be("-NOPROTO unsupported protocol version");
        (await c.CallAsync("ECHO", "hi")).Should().Be("hi");
        var count = (await c.CallAsync("COMMAND", "COUNT")).Should().BeOfType<long>().Which;
        count.Should().BeGreaterThan(30);
        // Key positions, which cluster-aware clients route by: first, last (-1: to the end), step; none for TIME.
        ((object?[])(await c.CallAsync("COMMAND", "INFO", "get", "MSET", "eval", "time", "nosuch"))!).Should().BeEquivalentTo(new object?[]
        {
            new object?[] { "get", 2L, new object?[] { "+readonly" }, 1L, 1L, 1L },
            new object?[] { "mset", -3L, new object?[] { "+write" }, 1L, -1L, 2L },
            new object?[] { "eval", -3L, new object?[] { "+write", "+movablekeys" }, 0L, 0L, 0L },
            new object?[] { "time", 1L, new object?[] { "+readonly" }, 0L, 0L, 0L },
            null,
        }, o => o.WithStrictOrdering());
        ((object?[])(await c.CallAsync("COMMAND", "INFO"))!).Should().HaveCount((int)count, "COMMAND INFO without names describes every command");
        var names = ((object?[])(await c.CallAsync("COMMAND", "LIST"))!).Cast<string>().ToList();
        names.Should().HaveCount((int)count).And.Contain(["get", "set", "scan", "eval"]);
        ((object?[])(await c.CallAsync("COMMAND", "LIST", "FILTERBY", "PATTERN", "get*"))!).Should().BeEquivalentTo(
            names.Where(n => n.StartsWith("get", StringComparison.Ordinal)), "get, getdel, getex, getset, getrange");
        ((object?[])(await c.CallAsync("COMMAND", "LIST", "FILTERBY", "MODULE", "search"))!).Should().BeEmpty();
        (await c.CallAsync("COMMAND", "LIST", "FILTERBY", "ACLCAT")).Should().Be("-ERR syntax error");
        (await c.CallAsync("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2")).Should().BeEquivalentTo(new object?[] { "a", "b" }, o => o.WithStrictOrdering());
        (await c.CallAsync("COMMAND", "GETKEYS", "RENAME", "from", "to")).Should().BeEquivalentTo(new object?[] { "from", "to" }, o => o.WithStrictOrdering());
        (await c.CallAsync("COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "arg"))
            .Should().BeEquivalentTo(new object?[] { "k1", "k2" }, o => o.WithStrictOrdering());
        (await c.CallAsync("COMMAND", "GETKEYS", "EVAL", "return 1", "x", "k1")).Should().Be("-ERR value is not an integer or out of range");
        (await c.CallAsync("COMMAND", "GETKEYS", "EVAL", "return 1", "3", "k1")).Should().Be("-ERR Number of keys can't be greater than number of args");
        (await c.CallAsync("COMMAND", "GETKEYS", "PING")).Should().Be("-ERR The command has no key arguments");
        (await c.CallAsync("COMMAND", "GETKEYS", "GET")).Should().Be("-ERR Invalid number of arguments specified for command");
        (await c.CallAsync("COMMAND", "GETKEYS", "NOSUCH", "x")).Should().Be("-ERR Invalid command specified");
        ((object?[])(await c.CallAsync("COMMAND", "HELP"))!).Should().Contain("+GETKEYS <full-command>");
        ((object?[])(await c.CallAsync("OBJECT", "HELP"))!).Should().Equal("+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "+ENCODING <key>");
        ((object?[])(await c.CallAsync("SCRIPT", "HELP"))!).Should().HaveCount(11).And.Contain("+LOAD <script>");
        // CONFIG GET answers from Engram's settings (a RESP3 map here; the fixture's durability is relaxed).
        (await c.CallAsync("CONFIG", "GET", "appendfsync", "max*", "port"))
            .Should().BeEquivalentTo(new object?[] { "appendfsync", "no", "port", fixture.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "maxclients", "10000", "maxmemory", "0", "maxmemory-policy", "noeviction" }, o => o.WithStrictOrdering());
        ((string)(await c.CallAsync("CONFIG", "SET", "maxclients", "5"))!).Should().StartWith("-ERR CONFIG SET is not supported");
        (await c.CallAsync("MEMORY", "USAGE", "object:long")).Should().Be((long)("object:long".Length + 102 + 64), "key, value as stored (a JSON string), the row");
        (await c.CallAsync("MEMORY", "USAGE", "object:none", "SAMPLES", "0")).Should().BeNull();
        ((string)(await c.CallAsync("INFO", "clients"))!).Should().Contain("blocked_clients:0", "redis-cli --stat reads it");
        var info = (string)(await c.CallAsync("INFO"))!;
        info.Should().Contain("# Server").And.Contain("redis_version:").And.Contain("# Memory").And.Contain("# Keyspace");
        (await c.CallAsync("QUIT")).Should().Be("+OK");
        c.IsClosedByServer().Should().BeTrue();

        // An inline command, as typed into telnet.
        using var inline = await fixture.ConnectAsync();
        await inline.SendRawAsync(Encoding.ASCII.GetBytes("PING\r\nECHO two\r\n"));
        inline.Read().Should().Be("+PONG");
        inline.Read().Should().Be("two");
        // Quoted arguments split as Redis splits them: double quotes with escapes, single quotes with \' only.
        await inline.SendRawAsync(Encoding.ASCII.GetBytes("SET \"inline key\" \"a \\\"b\\\" \\x41\\n\"\r\nGET 'inline key'\r\nECHO 'it\\'s \\n'\r\n  ECHO\t\"\"  \r\n"));
        inline.Read().Should().Be("+OK");
        inline.Read().Should().Be("a \"b\" A\n");
        inline.Read().Should().Be("it's \\n");
        inline.Read().Should().Be("");
        await inline.SendRawAsync(Encoding.ASCII.GetBytes("ECHO \"open\r\n"));
        inline.Read().Should().Be("-ERR Protocol error: unbalanced quotes in request");
        inline.IsClosedByServer().Should().BeTrue();
        using var glued = await fixture.ConnectAsync();
        await glued.SendRawAsync(Encoding.ASCII.GetBytes("ECHO \"a\"b\r\n"));
        glued.Read().Should().Be("-ERR Protocol error: unbalanced quotes in request", "a closing quote must end its argument");
    }
}
