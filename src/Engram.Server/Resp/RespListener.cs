using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Resp;

/// <summary>
/// The Redis protocol endpoint (issue 20): a TCP listener on <see cref="RespOptions.Listen"/> built on
/// Kestrel's socket transport (pipelines, its memory pool), started with the host and bound before the
/// host reports started (a busy port fails the start). Each connection is a <see cref="RespConnection"/>;
/// an idle sweep closes connections silent for <see cref="RespOptions.IdleTimeoutSeconds"/>.
/// </summary>
internal sealed class RespListener(IEnumerable<IConnectionListenerFactory> factories, IOptions<EngramServerOptions> options, KvService kv,
    ApiKeyService keys, AuditTrail audit, FailedAuthThrottle throttle, TimeProvider clock, ILoggerFactory loggers, ILogger<RespListener> log) : IHostedService, IAsyncDisposable
{
    /// <summary>The Redis version Engram answers to (HELLO, INFO): the command set and reply shapes it follows.</summary>
    public const string RedisVersion = "7.2.0";

    private readonly ConcurrentDictionary<long, (RespConnection Connection, Task Running)> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private IConnectionListener? _listener;
    private Task? _accepting;
    private Timer? _sweep;
    private long _nextId;
    private int _inlineWarned;

    public RespOptions Options => options.Value.Resp;

    public KvService KeyValue => kv;

    public ApiKeyService Keys => keys;

    public FailedAuthThrottle Throttle => throttle;

    public ILogger Log => log;

    /// <summary>The caller of a loopback client while no API key exists (as an HTTP request in open mode).</summary>
    public Caller OpenCaller { get; } = Caller.Default("resp");

    /// <summary>The port bound (the one the system picked when <see cref="RespOptions.Listen"/> names port 0); 0 before the start.</summary>
    public int Port => (_listener?.EndPoint as IPEndPoint)?.Port ?? 0;

    /// <summary>The address bound; null before the start.</summary>
    public EndPoint? BoundEndPoint => _listener?.EndPoint;

    public TimeSpan Uptime => _uptime.Elapsed;

    public int ConnectionCount => _connections.Count;

    /// <summary>Connections waiting in WAIT or WAITAOF for replicas (INFO's <c>blocked_clients</c>; not for hot paths).</summary>
    public int BlockedCount => _connections.Values.Count(c => c.Connection.Blocked);

    /// <summary>The open connections (CLIENT LIST).</summary>
    public IEnumerable<RespConnection> Connections => _connections.Values.Select(c => c.Connection);

    /// <summary>Commands, errors, connections and bytes (metrics and INFO stats).</summary>
    public RespStats Stats { get; } = new();

    /// <summary>SCAN's cursors, shared by every connection.</summary>
    public RespScanCursors ScanCursors { get; } = new();

    /// <summary>The scripts EVALSHA finds, and the thread scripts run on.</summary>
    public Scripting.ScriptHost Scripts { get; } = new(options.Value.Resp);

    /// <summary>The most bytes of queued transaction commands all connections may hold together.</summary>
    public const long MaxQueuedTransactionBytes = 256L * 1024 * 1024;

    private long _queuedTransactionBytes;

    /// <summary>Reserves <paramref name="bytes"/> of the shared transaction queue; false (nothing reserved) when it would overflow.</summary>
    public bool TryReserveQueued(long bytes)
    {
        if (Interlocked.Add(ref _queuedTransactionBytes, bytes) <= MaxQueuedTransactionBytes)
        {
            return true;
        }
        Interlocked.Add(ref _queuedTransactionBytes, -bytes);
        return false;
    }

    public void ReleaseQueued(long bytes) => Interlocked.Add(ref _queuedTransactionBytes, -bytes);

    private long _arrivingBytes;

    /// <summary>
    /// Reserves <paramref name="bytes"/> more of the bound on commands still arriving over all connections
    /// (<see cref="RespOptions.MaxArrivingBytes"/>); false (nothing reserved) when it would pass the bound.
    /// </summary>
    public bool TryReserveArriving(long bytes)
    {
        if (Interlocked.Add(ref _arrivingBytes, bytes) <= Options.MaxArrivingBytes)
        {
            return true;
        }
        Interlocked.Add(ref _arrivingBytes, -bytes);
        return false;
    }

    public void ReleaseArriving(long bytes) => Interlocked.Add(ref _arrivingBytes, -bytes);

    /// <summary>Bytes of commands still arriving that connections hold past their own first 16 KB (INFO memory).</summary>
    public long ArrivingBytes => Volatile.Read(ref _arrivingBytes);

    /// <summary>Whether connections are served by Engram's epoll loops (<see cref="RespOptions.EventLoop"/>).</summary>
    public bool UsesEventLoop => Options.EventLoop && EventLoop.EpollNative.IsSupported;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var endpoint = Options.EndPoint();
        var factory = UsesEventLoop ? new EventLoop.EpollTransport(loggers, Options.EventLoopsFor(Environment.ProcessorCount))
            : Options.InlineCompletions ? InlineTransport.Create(loggers)
            : factories.FirstOrDefault(f => f is IConnectionListenerFactorySelector selector && selector.CanBind(endpoint))
                ?? factories.FirstOrDefault() ?? throw new InvalidOperationException("no connection transport is registered for the RESP endpoint");
        try
        {
            _listener = await factory.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            throw new RespListenException(endpoint, ex);
        }
        log.LogInformation("Redis protocol (RESP) endpoint listening on {Endpoint}", _listener.EndPoint);
        Stats.Connections = () => _connections.Count;
        Stats.Start();
        _accepting = AcceptAsync(_listener);
        if (Options.IdleTimeoutSeconds > 0)
        {
            var period = TimeSpan.FromSeconds(Math.Clamp(Options.IdleTimeoutSeconds / 4.0, 0.25, 10));
            _sweep = new Timer(_ => SweepIdle(), null, period, period);
        }
    }

    private async Task AcceptAsync(IConnectionListener listener)
    {
        while (true)
        {
            ConnectionContext? context;
            try
            {
                context = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            if (context is null)
            {
                return; // unbound
            }
            Stats.Accept();
            if (_connections.Count >= Options.MaxConnections)
            {
                Stats.Close(RespStats.ClosedMaxClients);
                _ = RefuseAsync(context);
                continue;
            }
            if (!UsesEventLoop && Options.InlineCompletions && !InlineTransport.TryPreferInline(context) && Interlocked.Exchange(ref _inlineWarned, 1) == 0)
            {
                log.LogWarning("This runtime does not let the RESP endpoint complete socket I/O inline; it dispatches to the thread pool");
            }
            var id = Interlocked.Increment(ref _nextId);
            var connection = new RespConnection(context, this, id);
            var running = RunAsync(connection, context);
            _connections[id] = (connection, running);
        }
    }

    private async Task RunAsync(RespConnection connection, ConnectionContext context)
    {
        await Task.Yield();
        try
        {
            await connection.RunAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            log.LogWarning(ex, "A RESP connection failed");
        }
        finally
        {
            _connections.TryRemove(connection.Id, out _);
            await context.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task RefuseAsync(ConnectionContext context)
    {
        try
        {
            await context.Transport.Output.WriteAsync("-ERR max number of clients reached\r\n"u8.ToArray()).ConfigureAwait(false);
            await context.Transport.Output.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            await context.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void SweepIdle()
    {
        var limit = Options.IdleTimeoutSeconds * 1000L;
        var now = Environment.TickCount64;
        foreach (var (_, (connection, _)) in _connections)
        {
            // A client blocked in WAIT/WAITAOF waits on purpose, as Redis exempts blocked clients; it leaves by closing its socket.
            if (now - connection.LastActivity > limit && !connection.Blocked)
            {
                connection.Abort();
            }
        }
    }

    /// <summary>A refused AUTH, in the audit log as the HTTP gate records a refused key (rate-limited there).</summary>
    public void AuditDenied(IPEndPoint? remote, string reason) =>
        audit.Denied(new AuditEntry(clock.GetUtcNow(), Caller.DefaultTenant, "anonymous", AuditActions.AuthDenied, "RESP AUTH", AuditActions.Unauthorized,
            remote?.Address.ToString(), reason));

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Stats.Stop();
        if (_sweep is not null)
        {
            await _sweep.DisposeAsync().ConfigureAwait(false);
        }
        if (_listener is not null)
        {
            await _listener.UnbindAsync(cancellationToken).ConfigureAwait(false);
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var (_, (connection, _)) in _connections)
        {
            connection.Abort();
        }
        var running = _connections.Values.Select(c => c.Running).Append(_accepting ?? Task.CompletedTask).ToArray();
        await Task.WhenAll(running).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        Stats.Stop();
        if (_listener is not null)
        {
            await _listener.DisposeAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
    }
}

/// <summary>The RESP endpoint could not bind its address: one line for <c>engram serve</c> that names that address, not the HTTP one.</summary>
public sealed class RespListenException(EndPoint endpoint, Exception inner) : IOException(Describe(endpoint, inner), inner)
{
    private static string Describe(EndPoint endpoint, Exception inner) =>
        inner is AddressInUseException or SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse }
            ? $"the Redis-protocol address {endpoint} is already in use (another engram serve, or a Redis server); choose another with --resp " +
              (endpoint is IPEndPoint ip && ip.Port < 65535 ? new IPEndPoint(ip.Address, ip.Port + 1).ToString() : "127.0.0.1:6380")
            : $"cannot listen for the Redis protocol on {endpoint}: {inner.Message.Split('\n')[0].Trim()}";
}
