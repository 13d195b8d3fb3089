using System.Text;
using Engram.Tests.Support;

namespace Engram.Tests.Resp;

/// <summary>
/// What a probe of the RESP endpoint found in session 41: a watched key that expired did not abort EXEC, HELLO's SETNAME
/// skipped the name check (a name with a newline forged a line of CLIENT LIST), and CLIENT SETINFO took anything; and in
/// session 44, a web page's HTTP request whose body lines ran as commands.
/// </summary>
public sealed class RespProbeFindingsTests
{
    /// <summary>
    /// A client that starts big commands on many connections and stalls made the server hold up to MaxCommandBytes per
    /// connection, with no bound over all of them (a probe, session 46: 300 connections, 2 GB). Commands still arriving are
    /// now counted against one bound; the connection whose command would pass it gets an error and is closed, and what
    /// others hold stays theirs to finish.
    /// </summary>
    [Fact]
    public async Task Partly_received_commands_of_all_connections_are_bounded_together()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.MaxCommandBytes = 1024 * 1024;
            o.Resp.MaxArrivingBytes = 2_500_000;
        });
        var port = server.RespPort;
        using var observer = await RespClient.ConnectAsync(port);
        async Task<long> ArrivingAsync() => long.Parse(((string)(await observer.CallAsync("INFO", "memory"))!).Split("\r\n")
            .Single(l => l.StartsWith("engram_arriving_bytes:", StringComparison.Ordinal)).Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
        async Task WaitForArrivingAsync(long bytes)
        {
            for (var i = 0; i < 200 && await ArrivingAsync() < bytes; i++)
            {
                await Task.Delay(25);
            }
            (await ArrivingAsync()).Should().BeGreaterThanOrEqualTo(bytes);
        }
        var head = Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$4\r\nbig1\r\n$1000000\r\n");
        var part = Encoding.ASCII.GetBytes(new string('x', 900_000));

        using var first = await RespClient.ConnectAsync(port);
        await first.SendRawAsync([.. head, .. part]);
        await WaitForArrivingAsync(900_000);
        using var second = await RespClient.ConnectAsync(port);
        await second.SendRawAsync([.. head, .. part]);
        await WaitForArrivingAsync(1_800_000);
        using var third = await RespClient.ConnectAsync(port);
        await third.SendRawAsync([.. head, .. part]);
        ((string)third.Read()!).Should().StartWith("-ERR partly received commands of all connections would pass the server's bound of 2500000 bytes");
        FluentActions.Invoking(() => third.Read()).Should().Throw<Exception>("the connection is closed");
        (await ArrivingAsync()).Should().BeLessThan(2_000_000, "the refused connection holds nothing");

        // The others finish their commands; what they held is given back.
        await first.SendRawAsync([.. Encoding.ASCII.GetBytes(new string('y', 100_000)), .. "\r\n"u8.ToArray()]);
        first.Read().Should().Be("+OK");
        second.Dispose();
        for (var i = 0; i < 200 && await ArrivingAsync() > 0; i++)
        {
            await Task.Delay(25);
        }
        (await ArrivingAsync()).Should().Be(0);
        (await observer.CallAsync("STRLEN", "big1")).Should().Be(1_000_000L);
        (await observer.CallAsync("PING")).Should().Be("+PONG");
    }

    [Fact]
    public async Task A_watched_key_that_expires_before_EXEC_aborts_it_and_one_that_has_not_does_not()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await EngramServer.StartAsync(configure: o => RespServerFixture.Configure(o), clock: clock);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);

        (await client.CallAsync("SET", "lock", "1", "PX", "500")).Should().Be("+OK");
        (await client.CallAsync("SET", "later", "1", "EX", "3600")).Should().Be("+OK");
        (await client.CallAsync("WATCH", "lock")).Should().Be("+OK");
        clock.Advance(TimeSpan.FromSeconds(1));
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "lock", "2")).Should().Be("+QUEUED");
        (await client.CallAsync("EXEC")).Should().BeNull("the watched key expired after WATCH");
        (await client.CallAsync("GET", "lock")).Should().BeNull();

        (await client.CallAsync("WATCH", "later")).Should().Be("+OK");
        clock.Advance(TimeSpan.FromSeconds(1));
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "later", "2")).Should().Be("+QUEUED");
        ((object?[])(await client.CallAsync("EXEC"))!).Should().Equal("+OK");
        (await client.CallAsync("GET", "later")).Should().Be("2");

        // A key already gone at WATCH that stays gone is no change.
        (await client.CallAsync("WATCH", "lock")).Should().Be("+OK");
        clock.Advance(TimeSpan.FromSeconds(1));
        (await client.CallAsync("MULTI")).Should().Be("+OK");
        (await client.CallAsync("SET", "lock", "3")).Should().Be("+QUEUED");
        ((object?[])(await client.CallAsync("EXEC"))!).Should().Equal("+OK");
    }

    [Fact]
    public async Task HELLO_SETNAME_checks_the_name_as_CLIENT_SETNAME_does_and_an_empty_name_clears_it()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        using var other = await RespClient.ConnectAsync(port);

        (await client.CallAsync("HELLO", "2", "SETNAME", "evil\nid=999 addr=6.6.6.6:1 name=fake")).Should()
            .Be("-ERR Client names cannot contain spaces, newlines or special characters.");
        var list = (string)(await other.CallAsync("CLIENT", "LIST"))!;
        list.Should().NotContain("id=999").And.NotContain("evil");
        (await client.CallAsync("CLIENT", "GETNAME")).Should().BeNull();

        (await client.CallAsync("HELLO", "2", "SETNAME", "worker-1")).Should().BeOfType<object?[]>();
        (await client.CallAsync("CLIENT", "GETNAME")).Should().Be("worker-1");
        (await client.CallAsync("HELLO", "2", "SETNAME", "")).Should().BeOfType<object?[]>();
        (await client.CallAsync("CLIENT", "GETNAME")).Should().BeNull("an empty name clears it, as CLIENT SETNAME \"\" does");
    }

    [Theory]
    [InlineData("LIB-NAME", "redis-py", "+OK")]
    [InlineData("lib-ver", "5.0.1", "+OK")]
    [InlineData("FOO", "x", "-ERR Unrecognized option 'FOO'")]
    [InlineData("LIB-NAME", "a b", "-ERR lib-name cannot contain spaces, newlines or special characters.")]
    [InlineData("LIB-VER", "1\n2", "-ERR lib-ver cannot contain spaces, newlines or special characters.")]
    public async Task CLIENT_SETINFO_takes_the_two_attributes_Redis_knows_with_printable_values(string attribute, string value, string reply)
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        (await client.CallAsync("CLIENT", "SETINFO", attribute, value)).Should().Be(reply);
    }

    [Fact]
    public async Task A_SCAN_cursor_works_on_any_connection_and_more_than_once_but_only_for_its_tenant()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        var acme = await server.CreateKeyAsync("acme", Core.Security.Role.Write);
        var other = await server.CreateKeyAsync("other", Core.Security.Role.Write);
        using var first = await RespClient.ConnectAsync(port);
        using var second = await RespClient.ConnectAsync(port);
        using var stranger = await RespClient.ConnectAsync(port);
        (await first.CallAsync("AUTH", acme)).Should().Be("+OK");
        (await second.CallAsync("AUTH", acme)).Should().Be("+OK");
        (await stranger.CallAsync("AUTH", other)).Should().Be("+OK");
        for (var i = 0; i < 5; i++)
        {
            (await first.CallAsync("SET", $"k{i}", "v")).Should().Be("+OK");
        }

        var page = (object?[])(await first.CallAsync("SCAN", "0", "COUNT", "2"))!;
        var cursor = (string)page[0]!;
        cursor.Should().NotBe("0");
        // A pooled client sends the next SCAN on another connection, and may retry it.
        var onSecond = (object?[])(await second.CallAsync("SCAN", cursor, "COUNT", "2"))!;
        var again = (object?[])(await first.CallAsync("SCAN", cursor, "COUNT", "2"))!;
        ((object?[])again[1]!).Should().Equal((object?[])onSecond[1]!);
        ((object?[])onSecond[1]!).Should().HaveCount(2).And.NotIntersectWith((object?[])page[1]!);
        // A cursor serves only its own tenant: another tenant's scan starts over in its own (empty) key space.
        var strangers = (object?[])(await stranger.CallAsync("SCAN", cursor))!;
        strangers[0].Should().Be("0");
        ((object?[])strangers[1]!).Should().BeEmpty();
    }

    [Theory]
    [InlineData("99999")]
    [InlineData("-1")]
    [InlineData("18446744073709551615")]
    public async Task A_SCAN_cursor_the_server_does_not_know_starts_the_scan_over(string cursor)
    {
        // Redis takes any number as a cursor (a client may keep one across a restart); an error would end a cleanup loop.
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        using var client = await RespClient.ConnectAsync(port);
        for (var i = 0; i < 5; i++)
        {
            (await client.CallAsync("SET", $"k{i}", "v")).Should().Be("+OK");
        }

        var seen = new List<object?>();
        var next = cursor;
        do
        {
            var page = (object?[])(await client.CallAsync("SCAN", next, "COUNT", "2"))!;
            seen.AddRange((object?[])page[1]!);
            next = (string)page[0]!;
        }
        while (next != "0");
        seen.Should().BeEquivalentTo(["k0", "k1", "k2", "k3", "k4"]);
        (await client.CallAsync("SCAN", "18446744073709551616")).Should().Be("-ERR invalid cursor");
        (await client.CallAsync("SCAN", "1.5")).Should().Be("-ERR invalid cursor");
    }

    [Fact]
    public async Task An_HTTP_request_on_the_RESP_port_is_closed_before_its_body_runs()
    {
        // What a page can make a browser send to 127.0.0.1:6380 without keys (a form POST, text/plain), and a GET.
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        using (var post = await RespClient.ConnectAsync(port))
        {
            await post.SendRawAsync(Encoding.ASCII.GetBytes(
                "POST / HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\nSET web:x pwned\r\nFLUSHDB\r\nSET web:y after\r\n"));
            post.IsClosedByServer().Should().BeTrue("the request line closes the connection, with no reply");
        }
        using (var get = await RespClient.ConnectAsync(port))
        {
            await get.SendRawAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\nSET web:z pwned\r\n"));
            ((string)get.Read()!).Should().StartWith("-ERR wrong number of arguments for 'get'");
            get.IsClosedByServer().Should().BeTrue("the Host: header closes it");
        }
        using (var pipelined = await RespClient.ConnectAsync(port))
        {
            // Any form, even inside MULTI: nothing after it runs.
            await pipelined.SendRawAsync([.. RespClient.Encode("MULTI"), .. RespClient.Encode("SET", "web:m", "1"), .. RespClient.Encode("post"), .. RespClient.Encode("EXEC")]);
            pipelined.Read().Should().Be("+OK");
            pipelined.Read().Should().Be("+QUEUED");
            pipelined.IsClosedByServer().Should().BeTrue();
        }

        using var client = await RespClient.ConnectAsync(port);
        foreach (var key in new[] { "web:x", "web:y", "web:z", "web:m" })
        {
            (await client.CallAsync("GET", key)).Should().BeNull(key);
        }
        (await client.CallAsync("SET", "still", "here")).Should().Be("+OK");
        ((string)(await client.CallAsync("INFO", "stats"))!).Should().Contain("engram_closed_cross_protocol:3");
    }
}
