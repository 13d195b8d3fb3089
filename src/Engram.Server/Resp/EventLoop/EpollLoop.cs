using System.Collections.Concurrent;
using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using static Engram.Server.Resp.EventLoop.EpollNative;

namespace Engram.Server.Resp.EventLoop;

/// <summary>
/// One event-loop thread: an epoll set of connections, level-triggered, as Redis's loop. A readable socket gets one
/// <c>recv</c>; what it read runs on this thread (the connection's pipes continue inline) and its replies are sent from
/// here with one <c>send</c>. The runtime's socket engine is edge-triggered and so tries every receive first: after each
/// request it made a second <c>recv</c> that found nothing (2.0 per unpipelined GET against Redis's 1.0). Work for a
/// connection from other threads (an abort, a close) is posted here, so only this thread touches a connection's
/// socket reads, its input pipe's writer and its registration.
/// </summary>
internal sealed unsafe class EpollLoop : IDisposable
{
    private const int MaxEvents = 256;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<ulong, EpollConnection> _connections = new();
    private readonly ConcurrentQueue<Action> _posted = new();
    private volatile bool _stopping;

    public EpollLoop(int index, ILogger log)
    {
        _log = log;
        _epoll = EpollCreate(CloseOnExec);
        if (_epoll < 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "epoll_create1");
        }
        _wake = EventFd(0, NonBlocking | CloseOnExec);
        if (_wake < 0)
        {
            var error = Marshal.GetLastPInvokeError();
            Close(_epoll);
            throw new Win32Exception(error, "eventfd");
        }
        Control(CtlAdd, _wake, In, 0); // data 0: the wake-up; connections count from 1
        _thread = new Thread(Run) { IsBackground = true, Name = $"engram-resp-{index}" };
        _thread.Start();
    }

    public void Add(EpollConnection connection) => _connections[connection.Key] = connection;

    public void Remove(EpollConnection connection) => _connections.TryRemove(connection.Key, out _);

    /// <summary>Changes what epoll reports for <paramref name="fd"/>; false when the kernel refused (a closed socket).</summary>
    public bool Control(int op, int fd, uint events, ulong key)
    {
        var change = new Event { Events = events, Data = key };
        return EpollControl(_epoll, op, fd, &change) == 0;
    }

    /// <summary>Runs <paramref name="action"/> on this loop's thread, soon.</summary>
    public void Post(Action action)
    {
        _posted.Enqueue(action);
        ulong one = 1;
        Write(_wake, (byte*)&one, sizeof(ulong));
    }

    private void Run()
    {
        var events = (Event*)NativeMemory.Alloc(MaxEvents, (nuint)sizeof(Event));
        try
        {
            while (!_stopping)
            {
                var count = EpollWait(_epoll, events, MaxEvents, -1);
                if (count < 0)
                {
                    var error = Marshal.GetLastPInvokeError();
                    if (error == EINTR)
                    {
                        continue;
                    }
                    _log.LogError("epoll_wait failed with errno {Errno}; the RESP event loop stops", error);
                    return;
                }
                for (var i = 0; i < count; i++)
                {
                    var key = events[i].Data;
                    if (key == 0)
                    {
                        RunPosted();
                    }
                    else if (_connections.TryGetValue(key, out var connection))
                    {
                        connection.OnEvents(events[i].Events);
                    }
                }
            }
        }
        finally
        {
            NativeMemory.Free(events);
        }
    }

    private void RunPosted()
    {
        ulong count;
        Read(_wake, (byte*)&count, sizeof(ulong));
        while (_posted.TryDequeue(out var action))
        {
            try
            {
                action();
            }
            catch (Exception ex)
            {
                _log.LogWarning(ex, "A RESP event-loop task failed");
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        Post(static () => { });
        _thread.Join();
        RunPosted(); // closes posted after the loop stopped still run
        Close(_wake);
        Close(_epoll);
    }
}
