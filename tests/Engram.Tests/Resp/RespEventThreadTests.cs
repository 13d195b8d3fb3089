using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Engram.Server.Resp;
using Engram.Tests.Durability;
using Engram.Tests.Support;
using FluentAssertions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using Xunit.Abstractions;

namespace Engram.Tests.Resp;

/// <summary>
/// Commands on the socket event thread (<see cref="RespOptions.InlineCompletions"/>, with <see cref="RespOptions.EventLoop"/> off): the transport really marks its
/// sockets, <c>engram serve</c> runs an event thread per core, and a pipeline mixing commands answered on the event
/// thread with commands that first move to the pool (cold keys read from SQLite, scans, past 64 commands) is answered
/// in order and sees its own earlier writes, with the switch on and off.
/// </summary>
public sealed class RespEventThreadTests(ITestOutputHelper output)
{
    [Fact]
    public async Task InlineTransport_MarksAcceptedSockets_ForInlineCompletions()
    {
        var factory = InlineTransport.Create(NullLoggerFactory.Instance);
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync((IPEndPoint)listener.EndPoint);
            await using var accepted = (await listener.AcceptAsync())!;
            var socket = accepted.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()!.Socket;
            PrefersInline(socket).Should().BeFalse("a socket is dispatched to the pool unless marked");

            InlineTransport.TryPreferInline(accepted).Should().BeTrue("this runtime has the per-socket switch");

            PrefersInline(socket).Should().BeTrue();
            PrefersInline(client.Client).Should().BeFalse("only the accepted socket was marked");
        }
        finally
        {
            await listener.DisposeAsync();
        }
    }

    [Fact]
    public async Task Serve_WithResp_RunsOneSocketEventThreadPerCore_UnlessTheOperatorChose()
    {
        if (!OperatingSystem.IsLinux())
        {
            output.WriteLine("skipped: thread names are read from /proc");
            return;
        }
        using var data = new TempDirectory();
        await using (var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["ENGRAM_RESP"] = "127.0.0.1:0" }))
        {
            using var client = await RespClient.ConnectAsync(child.RespPort);
            (await client.CallAsync("PING")).Should().Be("+PONG");
            child.RecentOutput.Should().Contain($"; Redis protocol (RESP) on 127.0.0.1:{child.RespPort}", "the start-up summary names the port bound, not 0");
            SocketEventThreads(child.ProcessId).Should().Be(Environment.ProcessorCount);
        }
        await using (var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["ENGRAM_RESP"] = "127.0.0.1:0", [InlineTransport.EventThreadsVariable] = "3" }))
        {
            using var client = await RespClient.ConnectAsync(child.RespPort);
            (await client.CallAsync("PING")).Should().Be("+PONG");
            SocketEventThreads(child.ProcessId).Should().Be(3, "the operator's own setting wins");
        }
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public async Task MixedPipeline_OfColdAndHotKeys_IsAnsweredInOrder(bool eventLoop, bool inline)
    {
        using var data = new TempDirectory();
        const int cold = 300;
        // Written by a first server, then read by a second one on the same file: its write-behind holds none of them,
        // so every GET of a cold key reads SQLite, off the event thread.
        await using (var first = await EngramServer.StartAsync(data.Path, o => Configure(o, eventLoop, inline)))
        {
            using var writer = await RespClient.ConnectAsync(first.RespPort);
            var script = new List<byte>();
            for (var i = 0; i < cold; i++)
            {
                script.AddRange(RespClient.Encode("SET", $"cold:{i}", $"c{i}"));
            }
            await writer.SendRawAsync([.. script]);
            for (var i = 0; i < cold; i++)
            {
                writer.Read().Should().Be("+OK");
            }
        }
        await using var second = await EngramServer.StartAsync(data.Path, o => Configure(o, eventLoop, inline));
        var port = second.RespPort;
        var clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            using var client = await RespClient.ConnectAsync(port);
            var commands = new List<string[]>();
            var expected = new List<object?>();
            for (var i = c; i < cold; i += 8)
            {
                // A cold read, a write and the read of it, a counter, a scan-like command and a multi-key read:
                // answered on the event thread or on the pool, the replies must come back in this order.
                commands.Add(["GET", $"cold:{i}"]);
                expected.Add($"c{i}");
                commands.Add(["SET", $"hot:{c}:{i}", $"h{i}"]);
                expected.Add("+OK");
                commands.Add(["GET", $"hot:{c}:{i}"]);
                expected.Add($"h{i}");
                commands.Add(["INCR", $"count:{c}"]);
                expected.Add((long)(commands.Count(x => x[0] == "INCR")));
                commands.Add(["EXISTS", $"cold:{i}", $"hot:{c}:{i}", "missing"]);
                expected.Add(2L);
                commands.Add(["MGET", $"cold:{i}", $"hot:{c}:{i}"]);
                expected.Add(new object?[] { $"c{i}", $"h{i}" });
            }
            commands.Add(["DBSIZE"]);
            expected.Add(null); // checked below: it depends on the other clients
            await client.SendRawAsync([.. commands.SelectMany(x => RespClient.Encode(x))]);
            for (var i = 0; i < commands.Count - 1; i++)
            {
                var reply = client.Read();
                reply.Should().BeEquivalentTo(expected[i], $"command {i} ({string.Join(' ', commands[i])}) of client {c}");
            }
            ((long)client.Read()!).Should().BeGreaterThanOrEqualTo(cold);
        })).ToList();
        await Task.WhenAll(clients);
    }

    private static void Configure(Server.EngramServerOptions options, bool eventLoop, bool inline)
    {
        RespServerFixture.Configure(options);
        options.Resp.EventLoop = eventLoop;
        options.Resp.InlineCompletions = inline;
    }

    private static bool PrefersInline(Socket socket) =>
        (bool)typeof(SafeSocketHandle).GetProperty("PreferInlineCompletions", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(socket.SafeHandle)!;

    private static int SocketEventThreads(int pid) =>
        Directory.GetDirectories($"/proc/{pid}/task").Count(task => ThreadName(task) == ".NET Sockets");

    /// <summary>A thread's name from /proc; empty for one that ended meanwhile.</summary>
    internal static string ThreadName(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }
}
