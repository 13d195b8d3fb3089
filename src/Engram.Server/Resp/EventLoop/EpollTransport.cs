using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Resp.EventLoop;

/// <summary>
/// The RESP endpoint's own transport on Linux (<see cref="RespOptions.EventLoop"/>): <see cref="RespOptions.EventLoops"/>
/// <see cref="EpollLoop"/>s (<see cref="RespOptions.EventLoopsFor"/>: one per two cores unless set), each connection on one of them, round robin. Accepting stays with the runtime's sockets (rare, and async).
/// </summary>
internal sealed class EpollTransport(ILoggerFactory loggers, int loopCount) : IConnectionListenerFactory
{
    private const int SolSocket = 1; // Linux's SOL_SOCKET and SO_REUSEADDR (this transport runs only on Linux)
    private const int SoReuseAddr = 2;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint is IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } v6 && v6.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
            // SO_REUSEADDR alone (a restart binds over connections in TIME_WAIT). .NET's ReuseAddress also sets SO_REUSEPORT
            // on Linux, which let a second engram bind the same port and take a share of the connections, and their writes.
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            socket.Bind(endpoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var log = loggers.CreateLogger<EpollTransport>();
        var loops = new EpollLoop[Math.Max(1, loopCount)];
        for (var i = 0; i < loops.Length; i++)
        {
            loops[i] = new EpollLoop(i, log);
        }
        return ValueTask.FromResult<IConnectionListener>(new Listener(socket, loops));
    }

    private sealed class Listener(Socket socket, EpollLoop[] loops) : IConnectionListener
    {
        private ulong _next;
        private int _closed;

        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is ObjectDisposedException or OperationCanceledException
                    || ex is SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted } && Volatile.Read(ref _closed) != 0)
                {
                    return null; // unbound
                }
                catch (SocketException)
                {
                    continue; // a client that left before its connection was accepted
                }
                try
                {
                    accepted.NoDelay = true;
                    accepted.Blocking = false;
                }
                catch (SocketException)
                {
                    accepted.Dispose();
                    continue;
                }
                var key = Interlocked.Increment(ref _next);
                var connection = new EpollConnection(accepted, loops[(int)(key % (ulong)loops.Length)], key);
                connection.Start();
                return connection;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            Volatile.Write(ref _closed, 1);
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            Volatile.Write(ref _closed, 1);
            socket.Dispose();
            foreach (var loop in loops)
            {
                loop.Dispose();
            }
            return ValueTask.CompletedTask;
        }
    }
}
