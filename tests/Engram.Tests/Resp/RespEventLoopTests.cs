using System.Diagnostics;
using System.Net.Sockets;
using Engram.Server.Resp;
using Engram.Server.Resp.EventLoop;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

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
    public async Task Connections_AreServedByTheEventLoops_OnePerCore()
    {
        EpollNative.IsSupported.Should().Be(OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture ==
            System.Runtime.InteropServices.Architecture.X64);
        if (!EpollNative.IsSupported)
        {
            return; // the runtime's sockets serve the endpoint: RespEventThreadTests
        }
        var port = EngramServer.FreePort();
        await using var server = await EngramServer.StartAsync(configure: o => RespServerFixture.Configure(o, port));
        Listener(server).UsesEventLoop.Should().BeTrue();
        var loops = Directory.GetDirectories("/proc/self/task")
            .Count(task => File.ReadAllText(Path.Combine(task, "comm")).Trim().StartsWith("engram-resp-", StringComparison.Ordinal));
        loops.Should().BeGreaterThanOrEqualTo(Environment.ProcessorCount, "each listener runs one loop thread per core");

        using var client = await RespClient.ConnectAsync(port);
        (await client.CallAsync("SET", "loop:k", "v")).Should().Be("+OK");
        (await client.CallAsync("GET", "loop:k")).Should().Be("v");
    }

    [Fact]
    public async Task ASenderParkedOnAFullSocket_IsReleasedByTheIdleSweep()
    {
        var port = EngramServer.FreePort();
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            RespServerFixture.Configure(o, port);
            o.Resp.IdleTimeoutSeconds = 1;
        });
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

        using var next = await RespClient.ConnectAsync(port);
        (await next.CallAsync("PING")).Should().Be("+PONG");
    }

    [Fact]
    public async Task PeersThatResetOrLeaveWithRepliesUnread_AreReleased_AndOthersAreServedMeanwhile()
    {
        var port = EngramServer.FreePort();
        await using var server = await EngramServer.StartAsync(configure: o => RespServerFixture.Configure(o, port));
        var listener = Listener(server);
        var socketsBefore = OpenSockets();
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
                reset.Client.LingerState = new LingerOption(true, 0);
            }
            using (var leaver = new TcpClient())
            {
                await leaver.ConnectAsync("127.0.0.1", port);
                await leaver.GetStream().WriteAsync(Enumerable.Range(0, 50).SelectMany(_ => RespClient.Encode("GET", "loop:mid")).ToArray());
            }
            (await steady.CallAsync("INCR", "loop:steady")).Should().Be((long)round + 1, "the steady client is served throughout");
        }
        await EventuallyAsync(() => listener.ConnectionCount == 1, "every connection but the steady one ended");
        // Their sockets were closed too (the steady one's two ends are this process's: the test's client and the server's).
        await EventuallyAsync(() => OpenSockets() <= socketsBefore + 2, "the server closed the sockets of the connections that ended");
        var counted = (long)(await steady.CallAsync("INCR", "loop:count"))!;
        counted.Should().BeInRange(1, 20 * 100 + 1, "INCRs that reached the store before a reset count; nothing counts twice");
    }

    /// <summary>Sockets this process holds open (its descriptors that name one).</summary>
    private static int OpenSockets() =>
        Directory.GetFiles("/proc/self/fd").Count(fd =>
        {
            try
            {
                return new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true;
            }
            catch (IOException)
            {
                return false; // closed meanwhile
            }
        });

    private static RespListener Listener(EngramServer server) => server.Services.GetServices<IHostedService>().OfType<RespListener>().Single();

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
