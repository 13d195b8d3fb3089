using System.Globalization;
using System.Text.RegularExpressions;

namespace Engram.Tests.Resp;

/// <summary>
/// Replies are bounded like commands: a client that pipelines commands with large replies and does not read them
/// stops its own connection (the server sends as it goes and waits on the full socket) instead of making the server
/// hold every reply; MGET is read and sent in parts and still answers whole and in order.
/// </summary>
public sealed class RespBackPressureTests(RespServerFixture fixture) : IClassFixture<RespServerFixture>
{
    [Fact]
    public async Task PipelinedBigReplies_NotRead_StopTheConnection_AndAllArriveWhenRead()
    {
        var value = new string('v', 512 * 1024);
        using var setup = await fixture.ConnectAsync();
        (await setup.CallAsync("SET", "bp:big", value)).Should().Be("+OK");

        // 200 MB of replies from 11 KB of commands: one read of the socket holds over a hundred of them.
        const int gets = 400;
        using var reader = await fixture.ConnectAsync();
        var id = (long)(await reader.CallAsync("CLIENT", "ID"))!;
        var batch = new List<byte>();
        for (var i = 0; i < gets; i++)
        {
            batch.AddRange(RespClient.Encode("GET", "bp:big"));
        }
        await reader.SendRawAsync([.. batch]);

        // Not reading: the server runs commands until the socket is full, then waits.
        long ran = -1, now;
        while ((now = await CommandsRunAsync(setup, id)) != ran)
        {
            ran = now;
            await Task.Delay(500);
        }
        ran.Should().BeLessThan(100, "replies past the socket's buffers (a few MB) wait for the client instead of piling up in the server");

        for (var i = 0; i < gets; i++)
        {
            reader.Read().Should().Be(value, $"reply {i} arrives whole and in order");
        }
        (await reader.CallAsync("PING")).Should().Be("+PONG");
        (await CommandsRunAsync(setup, id)).Should().BeGreaterThanOrEqualTo(gets + 1);
    }

    [Fact]
    public async Task ABigMGet_NotRead_IsSentInParts_AndArrivesWholeWhenRead()
    {
        var value = new string('m', 512 * 1024);
        using var setup = await fixture.ConnectAsync();
        (await setup.CallAsync("SET", "bp:bigm", value)).Should().Be("+OK");

        using var reader = await fixture.ConnectAsync();
        var id = (long)(await reader.CallAsync("CLIENT", "ID"))!;
        await reader.SendRawAsync(RespClient.Encode([.. Enumerable.Repeat("bp:bigm", 400).Prepend("MGET")])); // a 200 MB reply

        long sent = -1, now;
        while ((now = await ClientFieldAsync(setup, id, "tot-net-out")) != sent)
        {
            sent = now;
            await Task.Delay(500);
        }
        sent.Should().BeLessThan(50L << 20, "the reply is sent as it is read, and waits for the client past the socket's buffers");

        var reply = (object?[])reader.Read()!;
        reply.Should().HaveCount(400).And.AllSatisfy(v => v.Should().Be(value));
        (await reader.CallAsync("PING")).Should().Be("+PONG");
    }

    [Fact]
    public async Task MGet_OfManyKeys_AnswersEveryKeyInOrder_AcrossItsParts()
    {
        using var c = await fixture.ConnectAsync();
        var keys = new List<string> { "MGET" };
        for (var i = 0; i < 100; i++)
        {
            if (i % 3 != 0)
            {
                (await c.CallAsync("SET", $"bp:m:{i}", $"value {i} " + new string('x', 4000))).Should().Be("+OK");
            }
            keys.Add($"bp:m:{i}");
        }
        var reply = (object?[])(await c.CallAsync([.. keys]))!;
        reply.Should().HaveCount(100);
        for (var i = 0; i < 100; i++)
        {
            reply[i].Should().Be(i % 3 == 0 ? null : $"value {i} " + new string('x', 4000));
        }
    }

    [Fact]
    public async Task MGet_WithABadKeyPastItsFirstPart_IsOneErrorBeforeAnyElement()
    {
        using var c = await fixture.ConnectAsync();
        var keys = new List<string> { "MGET" };
        for (var i = 0; i < 40; i++)
        {
            keys.Add(i == 37 ? "bad\u0001key" : $"bp:e:{i}");
        }
        var reply = await c.CallAsync([.. keys]);
        reply.Should().BeOfType<string>().Which.Should().StartWith("-ERR").And.Contain("control characters");
        (await c.CallAsync("PING")).Should().Be("+PONG", "the connection is in step: no half-written array came before the error");
    }

    private static Task<long> CommandsRunAsync(RespClient client, long id) => ClientFieldAsync(client, id, "tot-cmds");

    /// <summary>A number of the connection's CLIENT LIST line (as last reported: at each send).</summary>
    private static async Task<long> ClientFieldAsync(RespClient client, long id, string field)
    {
        var list = (string)(await client.CallAsync("CLIENT", "LIST"))!;
        var line = list.Split('\n').Single(l => l.StartsWith($"id={id} ", StringComparison.Ordinal));
        return long.Parse(Regex.Match(line, $@"\b{field}=(\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
