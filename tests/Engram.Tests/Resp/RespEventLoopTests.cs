using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using Engram.Server.Resp;
using Engram.Server.Resp.EventLoop;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Resp;

/// <summary>
/// The RESP endpoint's own epoll loops (<see cref="RespOptions.EventLoop"/>, Linux x86-64): they really serve the
/// connections here, and a connection is released whatever state it ends in: its sender parked on a full socket when
/// the idle sweep aborts it, its peer resetting it in the middle of a pipeline, its peer closing with replies unread.
/// The rest of the RESP tests (real clients, back-pressure, time-outs, kill -9) run on the loops too, as they are the
/// default.
/// </summary>
public sealed class RespEventLoopTests
{
    [Fact]
    public async Task Connections_AreServedByTheEventLoops_AsManyAsConfigured()
    {
        EpollNative.IsSupported.Should().Be(OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture ==
            System.Runtime.InteropServices.Architecture.X64);
        if (!EpollNative.IsSupported)
        {
            return; // the runtime's sockets serve the endpoint: RespEventThreadTests
        }
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.EventLoops = 5; // no other test asks for five: their loop threads are named up to engram-resp-4
        });
        var port = server.RespPort;
        Listener(server).UsesEventLoop.Should().BeTrue();
        var names = Directory.GetDirectories("/proc/self/task").Select(RespEventThreadTests.ThreadName).ToList();
        names.Should().Contain("engram-resp-4", "the listener runs the five loops it was given");
        new RespOptions { Listen = "127.0.0.1:1", EventLoops = -1 }.Validate().Should().ContainSingle(e => e.Contains("EventLoops", StringComparison.Ordinal));
        // Unset: one loop per two cores, at least one.
        new[] { 1, 2, 3, 8 }.Select(new RespOptions().EventLoopsFor).Should().Equal(1, 1, 1, 4);
        new RespOptions { EventLoops = 3 }.EventLoopsFor(8).Should().Be(3);

        using var client = await RespClient.ConnectAsync(port);
        (await client.CallAsync("SET", "loop:k", "v")).Should().Be("+OK");
        (await client.CallAsync("GET", "loop:k")).Should().Be("v");
    }

    [Fact]
    public async Task ASenderParkedOnAFullSocket_IsReleasedByTheIdleSweep()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o);
            o.Resp.IdleTimeoutSeconds = 1;
        });
        var port = server.RespPort;
        var listener = Listener(server);
        using (var setup = await RespClient.ConnectAsync(port))
        {
            (await setup.CallAsync("SET", "loop:big", new string('v', 512 * 1024))).Should().Be("+OK");
        }

        // 200 MB of replies asked for and none read: the sender waits for room that never comes, until the sweep aborts.
        using var stuck = new TcpClient { ReceiveBufferSize = 64 * 1024 };
        await stuck.ConnectAsync("127.0.0.1", port);
        var gets = Enumerable.Range(0, 400).SelectMany(_ => RespClient.Encode("GET", "loop:big")).ToArray();
        await stuck.GetStream().WriteAsync(gets);
        var stuckInode = await ServerSocketInodeAsync(port, stuck);
        await EventuallyAsync(() => listener.ConnectionCount == 0, "the aborted connection ended with its sender parked");

        // And its socket was closed: reading what the kernel still buffers ends in the end of the stream.
        var stream = stuck.GetStream();
        stream.ReadTimeout = 30_000;
        var buffer = new byte[1 << 20];
        long received = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30))) > 0)
        {
            received += read;
        }
        received.Should().BeLessThan(400L * 512 * 1024, "the server stopped sending when it closed the connection");
        await EventuallyAsync(() => !ProcessHolds(stuckInode), "the server closed its socket");

        // The server still serves a new connection. With this test's 1 s idle time-out, a machine loaded enough to keep the
        // event loop from reading the PING for a second (a full test run caught it once) has the sweep cut that connection
        // as idle: another try then, which a broken server would fail every time.
        object? pong = null;
        for (var attempt = 0; attempt < 5 && pong is null; attempt++)
        {
            var idleClosed = listener.Stats.Closed(RespStats.ClosedIdle);
            try
            {
                using var next = await RespClient.ConnectAsync(port);
                pong = await next.CallAsync("PING");
            }
            catch (EndOfStreamException)
            {
                await EventuallyAsync(() => listener.Stats.Closed(RespStats.ClosedIdle) > idleClosed, "only the idle sweep may close a connection that sent a PING");
            }
        }
        pong.Should().Be("+PONG");
    }

    [Fact]
    public async Task PeersThatResetOrLeaveWithRepliesUnread_AreReleased_AndOthersAreServedMeanwhile()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        var listener = Listener(server);
        var inodes = new List<string>();
        using var steady = await RespClient.ConnectAsync(port);
        (await steady.CallAsync("SET", "loop:steady", "0")).Should().Be("+OK");
        (await steady.CallAsync("SET", "loop:mid", new string('m', 64 * 1024))).Should().Be("+OK");

        for (var round = 0; round < 20; round++)
        {
            // A reset (linger 0) in the middle of a pipeline of writes and big reads, and a plain close with replies unread.
            using (var reset = new TcpClient())
            {
                await reset.ConnectAsync("127.0.0.1", port);
                var batch = Enumerable.Range(0, 200).SelectMany(i => RespClient.Encode(i % 2 == 0 ? "INCR" : "GET", i % 2 == 0 ? "loop:count" : "loop:mid")).ToArray();
                await reset.GetStream().WriteAsync(batch);
                inodes.Add(await ServerSocketInodeAsync(port, reset));
                reset.Client.LingerState = new LingerOption(true, 0);
            }
            using (var leaver = new TcpClient())
            {
                await leaver.ConnectAsync("127.0.0.1", port);
                await leaver.GetStream().WriteAsync(Enumerable.Range(0, 50).SelectMany(_ => RespClient.Encode("GET", "loop:mid")).ToArray());
                inodes.Add(await ServerSocketInodeAsync(port, leaver));
            }
            (await steady.CallAsync("INCR", "loop:steady")).Should().Be((long)round + 1, "the steady client is served throughout");
        }
        await EventuallyAsync(() => listener.ConnectionCount == 1, "every connection but the steady one ended");
        await EventuallyAsync(() => !inodes.Any(ProcessHolds), "the server closed the sockets of the connections that ended");
        var counted = (long)(await steady.CallAsync("INCR", "loop:count"))!;
        counted.Should().BeInRange(1, 20 * 100 + 1, "INCRs that reached the store before a reset count; nothing counts twice");
    }

    [Fact]
    public async Task AnAbortAfterTheClose_LeavesTheSocketThatReusedTheDescriptorAlone()
    {
        if (!EpollNative.IsSupported)
        {
            return;
        }
        // The idle sweep or a stop can abort a connection that is closing; by then its descriptor's number may name the next
        // connection's socket, which a shutdown of that number would cut.
        var transport = new EpollTransport(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, 1);
        var listener = await transport.BindAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var clients = new List<TcpClient>();
        var fillers = new List<EpollConnection>();
        try
        {
            EpollConnection closed = null!, next = null!;
            TcpClient nextClient = null!;
            var reusedNumber = false;
            // Linux hands out the lowest free number; other tests in this process open and close descriptors meanwhile. A
            // lower number freed by them goes to the accepted socket first: that connection is kept open (closing it would
            // free the same number again) and the next accept comes closer. If another thread takes the closed number
            // itself, the round starts over.
            for (var round = 0; round < 20 && !reusedNumber; round++)
            {
                (closed, _) = await ConnectAsync(listener, clients, new TcpClient());
                // The next client's socket is made first, so the number the close frees goes to the next accepted socket.
                nextClient = new TcpClient();
                await closed.DisposeAsync();
                for (var attempt = 0; attempt < 50; attempt++)
                {
                    (next, _) = await ConnectAsync(listener, clients, nextClient);
                    if (next.Descriptor == closed.Descriptor)
                    {
                        reusedNumber = true;
                        break;
                    }
                    fillers.Add(next);
                    if (next.Descriptor > closed.Descriptor)
                    {
                        break; // the closed number went elsewhere
                    }
                    nextClient = new TcpClient();
                }
            }
            reusedNumber.Should().BeTrue("a later connection got the closed one's descriptor number");
            var reused = next;

            closed.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException("late"));
            await Task.Delay(200);

            // The next connection still carries bytes both ways.
            await nextClient.GetStream().WriteAsync("ping"u8.ToArray());
            var read = await reused.Transport.Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            System.Text.Encoding.ASCII.GetString(read.Buffer.ToArray()).Should().Be("ping");
            reused.Transport.Input.AdvanceTo(read.Buffer.End);
            await reused.Transport.Output.WriteAsync("pong"u8.ToArray());
            var buffer = new byte[4];
            await nextClient.GetStream().ReadExactlyAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            System.Text.Encoding.ASCII.GetString(buffer).Should().Be("pong");
            await reused.DisposeAsync();
        }
        finally
        {
            foreach (var filler in fillers)
            {
                await filler.DisposeAsync();
            }
            clients.ForEach(c => c.Dispose());
            await listener.DisposeAsync();
        }
    }

    private static async Task<(EpollConnection Connection, TcpClient Client)> ConnectAsync(Microsoft.AspNetCore.Connections.IConnectionListener listener,
        List<TcpClient> clients, TcpClient client)
    {
        clients.Add(client);
        var accepting = listener.AcceptAsync().AsTask();
        await client.ConnectAsync((System.Net.IPEndPoint)listener.EndPoint);
        return ((EpollConnection)(await accepting.WaitAsync(TimeSpan.FromSeconds(10)))!, client);
    }

    /// <summary>
    /// The inode of the server's end of <paramref name="client"/>'s connection (this process hosts the server), from
    /// /proc/net/tcp: local port the server's, remote port the client's. Read while the connection is established.
    /// </summary>
    private static async Task<string> ServerSocketInodeAsync(int serverPort, TcpClient client)
    {
        var local = $"0100007F:{serverPort:X4}";
        var remote = $"0100007F:{((System.Net.IPEndPoint)client.Client.LocalEndPoint!).Port:X4}";
        string? inode = null;
        await EventuallyAsync(() =>
        {
            inode = File.ReadLines("/proc/net/tcp").Skip(1).Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f[1] == local && f[2] == remote && f[9] != "0").Select(f => f[9]).FirstOrDefault();
            return inode is not null;
        }, "the server accepted the connection");
        return inode!;
    }

    /// <summary>Whether a descriptor of this process still names the socket <paramref name="inode"/>.</summary>
    private static bool ProcessHolds(string inode) =>
        Directory.GetFiles("/proc/self/fd").Any(fd =>
        {
            try
            {
                return new FileInfo(fd).LinkTarget == $"socket:[{inode}]";
            }
            catch (IOException)
            {
                return false; // closed meanwhile
            }
        });

    private static RespListener Listener(EngramServer server) => server.Services.GetRequiredService<RespListener>();

    private static async Task EventuallyAsync(Func<bool> done, string because)
    {
        var waited = Stopwatch.StartNew();
        while (!done())
        {
            waited.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(30), because);
            await Task.Delay(50);
        }
    }
}
