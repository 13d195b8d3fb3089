using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;
using StackExchange.Redis;
using Role = Engram.Core.Security.Role;

namespace Engram.Tests.Resp;

/// <summary>
/// EVAL / EVALSHA / SCRIPT on both stores: Redis's conversions both ways, redis.call and redis.pcall, the script cache,
/// read-only scripts, atomicity under concurrent clients (a read-modify-write script that was not atomic loses
/// updates), all-or-nothing on an error, the sandbox, and the limits: time (in Lua code and in the pattern matcher),
/// memory and SCRIPT KILL. The pattern functions themselves are compared with the C library's in RespScriptPatternTests.
/// </summary>
public sealed class RespScriptTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Scripts_follow_redis_and_are_atomic(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);

        // Lua → RESP, as Redis converts.
        (await client.CallAsync("EVAL", "return 1", "0")).Should().Be(1L);
        (await client.CallAsync("EVAL", "return 3.99", "0")).Should().Be(3L, "a float is truncated to an integer");
        ((object?[])(await client.CallAsync("EVAL", "return {1, 'two', {3, 'x'}, false, true, nil, 7}", "0"))!)
            .Should().BeEquivalentTo(new object?[] { 1L, "two", new object?[] { 3L, "x" }, null, 1L }, o => o.WithStrictOrdering());
        (await client.CallAsync("EVAL", "return redis.status_reply('FINE')", "0")).Should().Be("+FINE");
        (await client.CallAsync("EVAL", "return redis.error_reply('MYERR went wrong')", "0")).Should().Be("-MYERR went wrong");
        (await client.CallAsync("EVAL", "return nil", "0")).Should().BeNull();
        (await client.CallAsync("EVAL", "return KEYS[1] .. '|' .. ARGV[1] .. '|' .. #KEYS .. #ARGV", "1", "k", "a", "b")).Should().Be("k|a|12");

        // redis.call: RESP → Lua, writes seen over RESP and REST, with their history.
        (await client.CallAsync("EVAL", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])", "1", "s:k", "hello")).Should().Be("hello");
        (await client.CallAsync("GET", "s:k")).Should().Be("hello");
        (await server.Client.GetFromJsonAsync<JsonElement>("/v1/kv/s:k")).GetProperty("value").GetString().Should().Be("hello");
        (await client.CallAsync("EVAL", "return type(redis.call('GET', KEYS[1]))", "1", "s:none")).Should().Be("boolean", "a null reply is false");
        (await client.CallAsync("EVAL", "return redis.call('SET', KEYS[1], 'v').ok", "1", "s:k")).Should().Be("OK");
        (await client.CallAsync("EVAL", "return redis.call('INCRBY', KEYS[1], 5) + 1", "1", "s:n")).Should().Be(6L);
        (await client.CallAsync("EVAL", "return redis.call('MGET', KEYS[1], KEYS[2])", "2", "s:n", "s:none"))
            .Should().BeEquivalentTo(new object?[] { "5", null });
        var history = await server.Client.GetFromJsonAsync<JsonElement>("/v1/kv/s:k?history=true");
        history.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("event").GetString()).Should().Equal("created", "updated");

        // Errors: redis.call raises the command's error, redis.pcall returns it; a failed script writes nothing.
        var incr = "return redis.call('INCR', KEYS[1])";
        var failed = (string)(await client.CallAsync("EVAL", incr, "1", "s:k"))!;
        failed.Should().StartWith("-ERR value is not an integer or out of range").And.EndWith("script: " + Sha1(incr));
        (await client.CallAsync("EVAL", "return redis.pcall('INCR', KEYS[1]).err", "1", "s:k")).Should().Be("ERR value is not an integer or out of range");
        (await client.CallAsync("EVAL", "redis.call('SET', KEYS[1], 'changed') error('boom')", "1", "s:atom"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR user_script:1: boom script: ");
        (await client.CallAsync("EXISTS", "s:atom")).Should().Be(0L, "a script that fails writes nothing");
        // The line an error came from, as Redis 7 appends it (Lua 5.4 words run-time errors its own way: "a nil value (local 't')").
        var nilIndex = "local t = nil\n\n\nreturn t.x";
        (await client.CallAsync("EVAL", nilIndex, "0")).Should().Be($"-ERR user_script:4: attempt to index a nil value (local 't') script: {Sha1(nilIndex)}, on @user_script:4.");
        // A redis.call in tail position has no line: the tail call has replaced the script's frame by the time it fails.
        failed.Should().NotContain(", on @user_script");
        // Keys a script did not declare are read when first touched, in the same step; a failed script leaves them as they were.
        (await client.CallAsync("SET", "u:a", "1")).Should().Be("+OK");
        (await client.CallAsync("EVAL", "redis.call('INCR', 'u:a') redis.call('SET', 'u:new', 'x') error('undo')", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR user_script:1: undo");
        ((object?[])(await client.CallAsync("MGET", "u:a", "u:new"))!).Should().Equal(new object?[] { "1", null });
        (await client.CallAsync("EVAL", "redis.call('INCR', 'u:a') redis.call('SET', ARGV[1] .. ':b', 'y') return redis.call('MGET', 'u:a', 'u:b')", "0", "u"))
            .Should().BeEquivalentTo(new object?[] { "2", "y" }, o => o.WithStrictOrdering());
        // The same from a script that uses a pattern function.
        (await client.CallAsync("EVAL", "local k = string.match(ARGV[1], '^(u:%a+)') redis.call('SET', k, 'z') return #redis.call('KEYS', 'u:*') .. redis.call('GET', k)", "0", "u:thread!"))
            .Should().Be("3z");
        // A script touches at most 10,000 keys in all; past that it fails and writes nothing. (On PostgreSQL each key it
        // did not declare is a round trip, and 10,000 of them take longer than the script's time limit of a second.)
        (await client.CallAsync("EVAL", "for i = 1, 10001 do redis.call('SET', 'u:many:' .. i, i) end return 1", "0"))
            .Should().BeOfType<string>().Which.Should().MatchRegex(backend == Backend.Sqlite ? "more than 10000 keys" : "more than 10000 keys|^-BUSY");
        (await client.CallAsync("EXISTS", "u:many:1", "u:many:10001")).Should().Be(0L);
        (await client.CallAsync("PING")).Should().Be("+PONG", "no reply of the failed script's commands is left over");
        (await client.CallAsync("DEL", "u:thread")).Should().Be(1L);
        // Redis's classic pattern delete: KEYS, then DEL of what it found.
        (await client.CallAsync("EVAL", "return redis.call('DEL', unpack(redis.call('KEYS', ARGV[1])))", "0", "u:*")).Should().Be(2L);
        (await client.CallAsync("EXISTS", "u:a", "u:b")).Should().Be(0L);
        (await client.CallAsync("EVAL", "return redis.call('CLIENT', 'ID')", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR This Redis command is not allowed from script");
        (await client.CallAsync("EVAL", "return redis.call('HSET', KEYS[1], 'f', 'v')", "1", "h"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR Unknown Redis command called from script");
        (await client.CallAsync("EVAL", "return redis.call('GET')", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR Wrong number of args calling Redis command from script");
        (await client.CallAsync("EVAL", "return redis.call('GET', {})", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR Lua redis lib command arguments must be strings or integers");
        (await client.CallAsync("EVAL", "return +", "0")).Should().BeOfType<string>().Which.Should().StartWith("-ERR Error compiling script (new function): user_script:1:");
        (await client.CallAsync("EVAL", "return 1", "2", "a")).Should().Be("-ERR Number of keys can't be greater than number of args");
        (await client.CallAsync("EVAL", "return 1", "-1")).Should().Be("-ERR Number of keys can't be negative");
        (await client.CallAsync("EVAL", "return 1", "x")).Should().Be("-ERR value is not an integer or out of range");

        // The script cache: EVALSHA, SCRIPT LOAD / EXISTS / FLUSH; EVAL caches too.
        var echo = "return ARGV[1]";
        (await client.CallAsync("SCRIPT", "LOAD", echo)).Should().Be(Sha1(echo));
        (await client.CallAsync("EVALSHA", Sha1(echo), "0", "x")).Should().Be("x");
        (await client.CallAsync("EVALSHA", Sha1(echo).ToUpperInvariant(), "0", "y")).Should().Be("y");
        (await client.CallAsync("EVALSHA", Sha1(incr), "1", "s:n")).Should().Be(6L, "EVAL cached its script");
        ((object?[])(await client.CallAsync("SCRIPT", "EXISTS", Sha1(echo), new string('0', 40)))!).Should().Equal(1L, 0L);
        (await client.CallAsync("SCRIPT", "FLUSH")).Should().Be("+OK");
        (await client.CallAsync("EVALSHA", Sha1(echo), "0", "x")).Should().Be("-NOSCRIPT No matching script. Please use EVAL.");
        (await client.CallAsync("SCRIPT", "KILL")).Should().Be("-NOTBUSY No scripts in execution right now.");
        (await client.CallAsync("SCRIPT", "NOPE")).Should().BeOfType<string>().Which.Should().StartWith("-ERR unknown subcommand 'NOPE'");

        // Read-only scripts read and may not write.
        (await client.CallAsync("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "s:k")).Should().Be("v");
        (await client.CallAsync("EVAL_RO", "return redis.call('SET', KEYS[1], 'x')", "1", "s:k"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR Write commands are not allowed from read-only scripts.");

        // The sandbox: no files, processes, modules or code loading; Redis's helpers are there.
        (await client.CallAsync("EVAL", """
            local missing = {}
            for _, name in ipairs({ 'io', 'os', 'load', 'loadfile', 'dofile', 'require', 'package', 'debug', 'collectgarbage', 'print' }) do
              local ok, e = pcall(function() return _G[name] end)
              if ok or not e:find("nonexistent global variable '" .. name .. "'", 1, true) then return 'reachable: ' .. name end
            end
            return tostring(string.dump)
            """, "0")).Should().Be("nil");
        (await client.CallAsync("EVAL", "return setmetatable({}, {__gc = function() end})", "0"))
            .Should().BeOfType<string>().Which.Should().Contain("scripts may not set __gc");
        (await client.CallAsync("EVAL", "return {bit.band(0xff, 0x0f), bit.bor(1, 2, 4), bit.bxor(5, 1), bit.tohex(255), bit.arshift(-16, 2), bit.lshift(1, 31), unpack({9})}", "0"))
            .Should().BeEquivalentTo(new object?[] { 15L, 7L, 4L, "000000ff", -4L, -2147483648L, 9L }, o => o.WithStrictOrdering());
        (await client.CallAsync("EVAL", "return redis.sha1hex('')", "0")).Should().Be("da39a3ee5e6b4b0d3255bfef95601890afd80709");
        // cjson, as Redis ships it: JSON values of keys read and written by scripts.
        (await client.CallAsync("SET", "j:agent", """{"name":"scout","tasks":[1,2],"lead":null,"ok":true,"note":"caf\u00e9 ✓"}""")).Should().Be("+OK");
        ((object?[])(await client.CallAsync("EVAL", """
            local a = cjson.decode(redis.call('GET', KEYS[1]))
            return {a.name, #a.tasks, a.tasks[2], tostring(a.lead == cjson.null), tostring(a.ok), a.note}
            """, "1", "j:agent"))!).Should().Equal("scout", 2L, 2L, "true", "true", "café ✓");
        (await client.CallAsync("EVAL", """
            local a = cjson.decode(redis.call('GET', KEYS[1]))
            a.tasks[#a.tasks + 1] = 3
            a.name = nil
            redis.call('SET', KEYS[1], cjson.encode(a))
            return cjson.encode({a.tasks, {}, cjson.null, 1.5, 'q"\\'})
            """, "1", "j:agent")).Should().Be("""[[1,2,3],{},null,1.5,"q\"\\"]""");
        var stored = (await server.Client.GetFromJsonAsync<JsonElement>("/v1/kv/j:agent")).GetProperty("value");
        JsonDocument.Parse(stored.GetString()!).RootElement.GetProperty("tasks").EnumerateArray().Select(t => t.GetInt32()).Should().Equal(1, 2, 3);
        (await client.CallAsync("EVAL", "return cjson.decode('{\"a\":')", "0")).Should().BeOfType<string>().Which.Should().Contain("Invalid JSON");
        (await client.CallAsync("EVAL", "return cjson.encode({[1] = 1, [100] = 2})", "0")).Should().BeOfType<string>().Which.Should().Contain("excessively sparse array");
        (await client.CallAsync("EVAL", "local t = {} t.self = t return cjson.encode(t)", "0")).Should().BeOfType<string>().Which.Should().Contain("excessive nesting");
        (await client.CallAsync("EVAL", "return cjson.encode(function() end)", "0")).Should().BeOfType<string>().Which.Should().Contain("Cannot serialise function");

        // Scripts share a Lua state and its globals, which are read-only (as in Redis 7): nothing one script could change
        // is seen by the next. Each assignment below is refused, raw or not; the script's own tables (KEYS) are its own.
        foreach (var change in new[]
        {
            "leaked = 'yes'", "string.rep = nil", "redis.call = nil", "rawset(string, 'rep', nil)", "rawset(_G, 'leaked', 1)",
            "setmetatable(cjson, {})", "table.insert(math, 1)", "getmetatable('').__index = {}", "_G.fresh = 1",
        })
        {
            (await client.CallAsync("EVAL", change + " return 1", "0")).Should().BeOfType<string>()
                .Which.Should().Contain("Attempt to modify a readonly table", change);
        }
        (await client.CallAsync("EVAL", "KEYS[1] = 'x' table.insert(ARGV, 'y') return KEYS[1] .. #ARGV", "1", "k")).Should().Be("x1");
        // Iterating a library hands out its functions, never the real table behind the view.
        (await client.CallAsync("EVAL", """
            local seen, n = {}, 0
            for _, library in ipairs({ string, table, math, utf8, redis, bit, cjson, _G }) do
              local iterate, state = pairs(library)
              if state ~= nil and state ~= library then return 'a table behind the view was handed out' end
              for name, value in pairs(library) do n = n + 1 if type(value) == 'table' and value ~= cjson.null then seen[#seen + 1] = name end end
            end
            table.sort(seen)
            return tostring(n > 100) .. ' ' .. table.concat(seen, ',')
            """, "0")).Should().Be("true ARGV,KEYS,_G,bit,cjson,math,redis,string,table,utf8");
        ((object?[])(await client.CallAsync("EVAL", "return {string.rep('a', 2), redis.call('PING').ok, tostring(KEYS[1]), tostring(rawget(_G, 'leaked'))}", "0"))!)
            .Should().Equal("aa", "PONG", "nil", "nil");
        (await client.CallAsync("EVAL", "return getmetatable('').__index == string and ('x'):rep(2)", "0")).Should().Be("xx", "the strings' metatable is a read-only stand-in");

        // Scripts queued in MULTI run in EXEC's transaction; one that fails leaves nothing of itself, the others stay.
        (await client.CallAsync("SET", "m:a", "1")).Should().Be("+OK");
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("INCR", "m:a")).Should().Be("+QUEUED");
        (await client.CallAsync("EVAL", "return redis.call('INCRBY', KEYS[1], 10)", "1", "m:a")).Should().Be("+QUEUED");
        (await client.CallAsync("EVAL", "redis.call('SET', KEYS[1], 'lost') redis.call('INCR', KEYS[2]) error('no')", "2", "m:b", "m:a")).Should().Be("+QUEUED");
        (await client.CallAsync("EVALSHA", new string('f', 40), "0")).Should().Be("+QUEUED");
        (await client.CallAsync("GET", "m:a")).Should().Be("+QUEUED");
        var inExec = (object?[])(await client.CallAsync("EXEC"))!;
        inExec.Should().HaveCount(5);
        inExec[..2].Should().Equal(2L, 12L);
        inExec[2].Should().BeOfType<string>().Which.Should().StartWith("-ERR user_script:1: no script: ");
        inExec[3].Should().Be("-NOSCRIPT No matching script. Please use EVAL.");
        inExec[4].Should().Be("12", "the failed script's INCR was rolled back");
        (await client.CallAsync("EXISTS", "m:b")).Should().Be(0L);

        // Atomic: 8 clients each take 25 units with GET, SET and INCRBY in one script, while 2 others sum both keys.
        await AtomicTransfersAsync(port);
    }

    private static async Task AtomicTransfersAsync(int port)
    {
        const int total = 1000;
        const string transfer = """
            local a = tonumber(redis.call('GET', KEYS[1]))
            redis.call('SET', KEYS[1], a - 1)
            redis.call('INCRBY', KEYS[2], 1)
            return a
            """;
        const string sum = "return tonumber(redis.call('GET', KEYS[1])) + tonumber(redis.call('GET', KEYS[2]))";
        var clients = new RespClient[10];
        for (var i = 0; i < clients.Length; i++)
        {
            clients[i] = await RespClient.ConnectAsync(port);
        }
        try
        {
            (await clients[0].CallAsync("MSET", "bank:a", total.ToString(CultureInfo.InvariantCulture), "bank:b", "0")).Should().Be("+OK");
            using var done = new CancellationTokenSource();
            var sums = new List<long>();
            var readers = clients.Skip(8).Select(client => Task.Run(async () =>
            {
                while (!done.IsCancellationRequested)
                {
                    var seen = (long)(await client.CallAsync("EVAL_RO", sum, "2", "bank:a", "bank:b"))!;
                    lock (sums)
                    {
                        sums.Add(seen);
                    }
                }
            })).ToList();
            await Task.WhenAll(clients.Take(8).Select(client => Task.Run(async () =>
            {
                for (var r = 0; r < 25; r++)
                {
                    (await client.CallAsync("EVAL", transfer, "2", "bank:a", "bank:b")).Should().BeOfType<long>();
                }
            })));
            await done.CancelAsync();
            await Task.WhenAll(readers);
            sums.Should().NotBeEmpty().And.OnlyContain(s => s == total, "no script sees another one half done");
            (await clients[0].CallAsync("GET", "bank:a")).Should().Be((total - 200).ToString(CultureInfo.InvariantCulture), "no read-modify-write was lost");
            (await clients[0].CallAsync("GET", "bank:b")).Should().Be("200");
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Pipelined_scripts_run_in_order_each_alone_with_the_commands_between_them(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        var incr = "return redis.call('INCR', KEYS[1])";
        var sha = (string)(await client.CallAsync("SCRIPT", "LOAD", incr))!;

        // One write: scripts in a row run as one step of the store; the replies keep the order of the commands.
        string[][] pipeline =
        [
            ["SET", "p:a", "10"],
            ["EVALSHA", sha, "1", "p:a"],
            ["EVAL", incr, "1", "p:a"],
            ["EVALSHA", "0000000000000000000000000000000000000000", "1", "p:a"],
            ["EVAL", "redis.call('SET', KEYS[1], 'x') error('boom')", "1", "p:b"],
            ["EVAL", "return redis.call('GET', 'p:a')", "1", "p:c"],
            ["EVALSHA", sha, "1", "p:a"],
            ["EVAL", "return", "x"],
            ["GET", "p:a"],
            ["EVAL", "redis.call('SET', KEYS[1], 'y') return redis.call('GET', KEYS[1])", "1", "p:b"],
            ["EXISTS", "p:b"],
        ];
        await client.SendRawAsync([.. pipeline.SelectMany(RespClient.Encode)]);
        var replies = pipeline.Select(_ => client.Read()).ToList();
        replies[0].Should().Be("+OK");
        replies[1].Should().Be(11L);
        replies[2].Should().Be(12L);
        replies[3].Should().Be("-NOSCRIPT No matching script. Please use EVAL.");
        replies[4].Should().BeOfType<string>().Which.Should().StartWith("-ERR user_script:1: boom", "a failed script is rolled back alone");
        replies[5].Should().Be("12", "a script reads a key it did not declare as the scripts before it in the step left it");
        replies[6].Should().Be(13L);
        replies[7].Should().Be("-ERR value is not an integer or out of range");
        replies[8].Should().Be("13");
        replies[9].Should().Be("y");
        replies[10].Should().Be(1L);

        // Many scripts in one pipeline, from several connections at once: every increment counted once.
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => RespClient.ConnectAsync(port)));
        await Task.WhenAll(clients.Select(c => Task.Run(async () =>
        {
            for (var round = 0; round < 5; round++)
            {
                await c.SendRawAsync([.. Enumerable.Range(0, 100).SelectMany(_ => RespClient.Encode("EVALSHA", sha, "1", "p:count"))]);
                for (var i = 0; i < 100; i++)
                {
                    c.Read().Should().BeOfType<long>();
                }
            }
        })));
        (await client.CallAsync("GET", "p:count")).Should().Be("2000");
        foreach (var c in clients)
        {
            c.Dispose();
        }
    }

    [Fact]
    public async Task Limits_stop_a_script_and_write_nothing_and_the_server_goes_on()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.ScriptTimeLimitMs = 500;
            o.Resp.ScriptMemoryMb = 16;
        });
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        using var other = await RespClient.ConnectAsync(port);

        // A loop past the time limit: stopped, nothing written; a write of another client waited for it and then went through.
        var looping = Task.Run(() => client.CallAsync("EVAL", "redis.call('SET', KEYS[1], 'x') while true do end", "1", "l:loop"));
        await Task.Delay(50);
        var write = Task.Run(() => other.CallAsync("SET", "l:other", "1"));
        (await looping).Should().BeOfType<string>().Which.Should().StartWith("-BUSY the script ran over its time limit of 500 ms");
        (await write).Should().Be("+OK");
        (await client.CallAsync("EXISTS", "l:loop")).Should().Be(0L);

        // Memory: a table that grows, and one huge string.
        (await client.CallAsync("EVAL", "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 4096) .. i end", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-OOM the script used more than 16 MB");
        (await client.CallAsync("EVAL", "return #string.rep('x', 1e9)", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-OOM ");
        // Deep recursion and a reply that refers to itself are errors, not crashes.
        (await client.CallAsync("EVAL", "local function f(n) return f(n + 1) + 1 end return f(1)", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-");
        (await client.CallAsync("EVAL", "local t = {} t[1] = t return t", "0")).Should().Be("-ERR reached lua stack limit");

        // A pattern that the C library's matcher runs for hours (the probe's): our matcher looks at the time limit as the
        // hook does, so the script stops at its limit, writes nothing, and the next scripts (with patterns) run as usual.
        var watch = Stopwatch.StartNew();
        var crafted = Task.Run(() => client.CallAsync("EVAL", "redis.call('SET', KEYS[1], 'x') return string.find(string.rep('a', 3000), '.-.-.-.-.-.-b')", "1", "l:slow"));
        await Task.Delay(100);
        var during = Stopwatch.StartNew();
        (await other.CallAsync("SET", "l:during", "1")).Should().Be("+OK", "a write waits for the script's step at most its time limit");
        // Bounds far from the pattern's hours and far above the 500 ms limit: a full test run on two cores once took
        // 2.06 s for this write, and what is checked is that the stop comes, not how fast a loaded machine gets there.
        during.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(15));
        (await crafted).Should().BeOfType<string>().Which.Should().StartWith("-BUSY the script ran over its time limit of 500 ms");
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20));
        (await client.CallAsync("EXISTS", "l:slow")).Should().Be(0L);
        (await client.CallAsync("EVAL", "return string.find('abc', 'b')", "0")).Should().Be(2L);
        // A pcall inside the script does not catch the stop, in a gsub with a function either.
        (await client.CallAsync("EVAL", "local ok = pcall(string.gsub, string.rep('a', 3000), '.-.-.-.-.-.-b', function() end) return 'escaped'", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-BUSY the script ran over its time limit");
        (await client.CallAsync("EVAL", "return redis.call('SET', KEYS[1], 'after').ok", "1", "l:after")).Should().Be("OK");
        (await other.CallAsync("GET", "l:after")).Should().Be("after");

        // The pattern functions are reachable by any name, as in Redis (the library's, not a stand-in).
        (await client.CallAsync("EVAL", "return {type(string['fi' .. 'nd']), type(('x')['gs' .. 'ub']), string.upper('ok')}", "0"))
            .Should().BeEquivalentTo(new object?[] { "function", "function", "OK" }, o => o.WithStrictOrdering());
        (await client.CallAsync("EVAL", "return string.gsub('a-b', '-', '+')", "0")).Should().Be("a+b");
        (await client.CallAsync("EVAL", "local t = {} for k, v in ('a=1, b=2'):gmatch('(%w+)=(%w+)') do t[#t + 1] = k .. v end return t", "0"))
            .Should().BeEquivalentTo(new object?[] { "a1", "b2" }, o => o.WithStrictOrdering());
        (await client.CallAsync("EVAL", "local r = string.find('abc', '%') return r", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR user_script:1: malformed pattern (ends with '%')");
        // (In a tail call the script's frame is gone when the wrapper raises, so there is no line: the C library's has one.)
        (await client.CallAsync("EVAL", "return string.find('abc', '%')", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR malformed pattern (ends with '%')");
        // A gsub result past the memory limit is the memory error, as the C library's would be.
        (await client.CallAsync("EVAL", "local s = string.rep('x', 1e6) return #s:gsub('x', string.rep('y', 40))", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-OOM ");
        // And the time limit stops a plain loop.
        (await client.CallAsync("EVAL", "local n = 0 while true do n = n + 1 end", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-BUSY the script ran over its time limit");
        (await client.CallAsync("EVAL", "return 'still here'", "0")).Should().Be("still here");
    }

    [Fact]
    public async Task Script_kill_stops_the_tenants_running_script_and_roles_hold()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.ScriptTimeLimitMs = 20_000;
        });
        var port = server.RespPort;
        var writerKey = await server.CreateKeyAsync("acme", Role.Write);
        var readerKey = await server.CreateKeyAsync("acme", Role.Read);
        var strangerKey = await server.CreateKeyAsync("other", Role.Write);
        using var writer = await RespClient.ConnectAsync(port);
        (await writer.CallAsync("AUTH", writerKey)).Should().Be("+OK");
        using var reader = await RespClient.ConnectAsync(port);
        (await reader.CallAsync("AUTH", readerKey)).Should().Be("+OK");
        using var stranger = await RespClient.ConnectAsync(port);
        (await stranger.CallAsync("AUTH", strangerKey)).Should().Be("+OK");
        using var anonymous = await RespClient.ConnectAsync(port);

        var looping = Task.Run(() => writer.CallAsync("EVAL", "redis.call('SET', KEYS[1], 'x') while true do end", "1", "k:loop"));
        var waited = Stopwatch.StartNew();
        object? killed;
        while ((killed = await reader.CallAsync("SCRIPT", "KILL")) is "-NOTBUSY No scripts in execution right now.")
        {
            waited.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
            (await stranger.CallAsync("SCRIPT", "KILL")).Should().Be("-NOTBUSY No scripts in execution right now.", "another tenant's script is not its to kill");
            await Task.Delay(20);
        }
        killed.Should().Be("+OK");
        (await looping).Should().Be("-ERR the script was killed by SCRIPT KILL; nothing it did was written");
        (await writer.CallAsync("EXISTS", "k:loop")).Should().Be(0L);

        // A script's commands and the bytes it passes them are bounded (its writes wait in memory for its one step).
        (await writer.CallAsync("EVAL", "for i = 1, 100001 do redis.call('PING') end return 1", "0"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR the script ran over 100000 commands");
        (await writer.CallAsync("EVAL", "local v = string.rep('x', 1000000) for i = 1, 100 do redis.call('SET', KEYS[1], v) end", "1", "k:big"))
            .Should().BeOfType<string>().Which.Should().StartWith("-ERR the script passed over 64 MB to its commands");
        (await writer.CallAsync("EXISTS", "k:big")).Should().Be(0L);

        // Roles hold inside scripts; the cache is per tenant.
        (await reader.CallAsync("EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "k:r"))
            .Should().BeOfType<string>().Which.Should().StartWith("-NOPERM ");
        var script = "return 'acme'";
        (await writer.CallAsync("SCRIPT", "LOAD", script)).Should().Be(Sha1(script));
        (await stranger.CallAsync("EVALSHA", Sha1(script), "0")).Should().Be("-NOSCRIPT No matching script. Please use EVAL.");
        (await reader.CallAsync("EVALSHA", Sha1(script), "0")).Should().Be("acme");
        (await anonymous.CallAsync("EVAL", "return 1", "0")).Should().Be("-NOAUTH Authentication required.");
        (await anonymous.CallAsync("SCRIPT", "LOAD", "return 1")).Should().Be("-NOAUTH Authentication required.");

        // One tenant filling its share of the script cache does not stop another's; EVAL still runs; FLUSH frees the share.
        for (var i = 0; i < Engram.Server.Resp.Scripting.ScriptHost.MaxTenantScripts; i++)
        {
            (await stranger.CallAsync("SCRIPT", "LOAD", $"return {i}")).Should().BeOfType<string>().Which.Should().HaveLength(40);
        }
        (await stranger.CallAsync("SCRIPT", "LOAD", "return 'one more'")).Should().BeOfType<string>().Which.Should().StartWith("-ERR the script cache is full");
        (await stranger.CallAsync("EVAL", "return 'still runs'", "0")).Should().Be("still runs");
        (await writer.CallAsync("SCRIPT", "LOAD", "return 'acme again'")).Should().Be(Sha1("return 'acme again'"));
        (await stranger.CallAsync("SCRIPT", "FLUSH")).Should().Be("+OK");
        (await stranger.CallAsync("SCRIPT", "LOAD", "return 'one more'")).Should().Be(Sha1("return 'one more'"));
        (await reader.CallAsync("EVALSHA", Sha1(script), "0")).Should().Be("acme", "a flush of another tenant leaves this one's scripts");
    }

    [Fact]
    public async Task StackExchangeRedis_runs_scripts()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        await using var redis = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port},abortConnect=true,connectTimeout=10000");
        var db = redis.GetDatabase();
        (await db.StringSetAsync("se:a", "41")).Should().BeTrue();
        var result = await db.ScriptEvaluateAsync("return redis.call('INCR', KEYS[1])", ["se:a"]);
        ((long)result).Should().Be(42);
        var prepared = LuaScript.Prepare("redis.call('SET', @key, @value) return redis.call('GET', @key)");
        var value = await db.ScriptEvaluateAsync(prepared, new { key = (RedisKey)"se:b", value = "from a prepared script" });
        ((string?)value).Should().Be("from a prepared script");
        var loaded = await prepared.LoadAsync(redis.GetServer(redis.GetEndPoints()[0]));
        var again = await db.ScriptEvaluateAsync(loaded, new { key = (RedisKey)"se:b", value = "again" });
        ((string?)again).Should().Be("again");
        var array = (RedisResult[])(await db.ScriptEvaluateAsync("return {KEYS[1], ARGV[1], 3}", ["se:c"], ["v"]))!;
        array.Select(r => r.ToString()).Should().Equal("se:c", "v", "3");
    }

    private static string Sha1(string script) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(script)));
}
