using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using static Engram.Server.Resp.EventLoop.EpollNative;

namespace Engram.Server.Resp.EventLoop;

/// <summary>
/// A RESP connection on an <see cref="EpollLoop"/>: a non-blocking socket and two pipes that continue inline. The loop
/// reads into the input pipe (one <c>recv</c> per readable event), and the flush runs the reader, the
/// <see cref="RespConnection"/>, at once; its flush of replies runs the sender here, which calls <c>send</c> on the thread
/// that flushed. Back-pressure both ways: a full input pipe takes the socket out of the read set until the reader has
/// consumed; a full socket makes the sender wait for the loop to see it writable, and the output pipe's own bound
/// then holds the writer.
/// </summary>
internal sealed class EpollConnection : ConnectionContext
{
    /// <summary>Bytes the input pipe holds before the socket is read no more (Kestrel's default read buffer).</summary>
    private const long InputPause = 1024 * 1024;

    /// <summary>Bytes of unsent replies before the writer's flush waits (Kestrel's default write buffer).</summary>
    private const long OutputPause = 64 * 1024;

    /// <summary>How long a closing connection's unsent replies may take before the socket is cut.</summary>
    private static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(5);

    private readonly Socket _socket;
    private readonly int _fd;
    private readonly EpollLoop _loop;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _gone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _sending = Task.CompletedTask;
    private TaskCompletionSource? _writable;
    private uint _interest;
    private bool _registered;
    private bool _readPaused;
    private bool _readDone;
    private bool _closedSignalled;
    private int _disposed;
    private int _disposing;

    public EpollConnection(Socket socket, EpollLoop loop, ulong key)
    {
        _socket = socket;
        _fd = (int)socket.SafeHandle.DangerousGetHandle();
        _loop = loop;
        Key = key;
        _input = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: InputPause, resumeWriterThreshold: InputPause / 2, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: OutputPause, resumeWriterThreshold: OutputPause / 2, useSynchronizationContext: false));
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        ConnectionId = "resp-" + key.ToString(System.Globalization.CultureInfo.InvariantCulture);
        RemoteEndPoint = socket.RemoteEndPoint;
        LocalEndPoint = socket.LocalEndPoint;
    }

    /// <summary>The connection's number in its loop's epoll set.</summary>
    public ulong Key { get; }

    /// <summary>The socket's descriptor (tests: a closed connection's number is soon another's).</summary>
    internal int Descriptor => _fd;

    public override IDuplexPipe Transport { get; set; }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    /// <summary>Starts sending and joins the loop's read set.</summary>
    public void Start()
    {
        _sending = SendAsync();
        _loop.Add(this);
        lock (_gate)
        {
            UpdateInterest();
        }
    }

    /// <summary>What epoll reported for the socket (the loop's thread).</summary>
    public void OnEvents(uint events)
    {
        try
        {
            if ((events & (Out | Err | Hup)) != 0)
            {
                WakeSender();
            }
            if ((events & (In | ReadHup | Err | Hup)) != 0)
            {
                Receive();
            }
        }
        catch (Exception ex)
        {
            EndReading(ex);
        }
    }

    private unsafe void Receive()
    {
        if (_readDone || _readPaused)
        {
            return;
        }
        var memory = _input.Writer.GetMemory(4096);
        nint read;
        fixed (byte* buffer = memory.Span)
        {
            read = EpollNative.Receive(_fd, buffer, memory.Length, 0);
        }
        if (read > 0)
        {
            _input.Writer.Advance((int)read);
            // With the inline scheduler the reader runs inside this flush: the commands are parsed, run and answered now.
            var flush = _input.Writer.FlushAsync();
            if (!flush.IsCompleted)
            {
                PauseReading(flush);
            }
            else if (flush.Result.IsCompleted)
            {
                EndReading(null); // the reader is done with the connection
            }
            return;
        }
        if (read == 0)
        {
            EndReading(null);
            return;
        }
        var error = Marshal.GetLastPInvokeError();
        if (error is not (EAGAIN or EINTR))
        {
            EndReading(new ConnectionResetException($"recv failed with errno {error}"));
        }
    }

    /// <summary>The input pipe is full: stop reading until its reader has consumed half of it.</summary>
    private void PauseReading(ValueTask<FlushResult> flush)
    {
        lock (_gate)
        {
            _readPaused = true;
            UpdateInterest();
        }
        _ = ResumeAsync(flush);
    }

    private async Task ResumeAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result;
        try
        {
            result = await flush.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _loop.Post(() => EndReading(ex));
            return;
        }
        if (result.IsCompleted)
        {
            _loop.Post(() => EndReading(null));
            return;
        }
        lock (_gate)
        {
            _readPaused = false;
            UpdateInterest();
        }
    }

    /// <summary>No more input: the peer closed, an error, an abort, or the reader finished (the loop's thread).</summary>
    private void EndReading(Exception? error)
    {
        if (_readDone)
        {
            return;
        }
        lock (_gate)
        {
            _readDone = true;
            UpdateInterest();
        }
        _input.Writer.Complete(error);
        SignalClosed();
    }

    private void SignalClosed()
    {
        if (_closedSignalled)
        {
            return;
        }
        _closedSignalled = true;
        // Not on the loop: a token's callbacks run where it is cancelled.
        ThreadPool.UnsafeQueueUserWorkItem(static closed => ((CancellationTokenSource)closed!).Cancel(), _closed);
    }

    /// <summary>
    /// Sends whatever the writer flushed, on the thread that flushed (the output pipe continues inline). A full socket
    /// parks the sender until the loop reports it writable.
    /// </summary>
    private async Task SendAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await _output.Reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    for (var offset = 0; offset < segment.Length;)
                    {
                        var sent = SendSome(segment.Span[offset..]);
                        if (sent > 0)
                        {
                            offset += sent;
                        }
                        else
                        {
                            await WaitWritableAsync().ConfigureAwait(false);
                        }
                    }
                }
                _output.Reader.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }
        await _output.Reader.CompleteAsync(error).ConfigureAwait(false);
        if (error is not null)
        {
            Abort(new ConnectionAbortedException("the socket refused the replies", error));
        }
    }

    /// <summary>Bytes the kernel took; 0 when the socket is full.</summary>
    private unsafe int SendSome(ReadOnlySpan<byte> data)
    {
        while (true)
        {
            nint sent;
            fixed (byte* bytes = data)
            {
                sent = EpollNative.Send(_fd, bytes, data.Length, MsgNoSignal);
            }
            if (sent >= 0)
            {
                return (int)sent;
            }
            var error = Marshal.GetLastPInvokeError();
            if (error == EAGAIN)
            {
                return 0;
            }
            if (error != EINTR)
            {
                throw new ConnectionResetException($"send failed with errno {error}");
            }
        }
    }

    private Task WaitWritableAsync()
    {
        lock (_gate)
        {
            if (_disposed != 0)
            {
                throw new ConnectionAbortedException("the connection is closed");
            }
            _writable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            UpdateInterest();
            return _writable.Task;
        }
    }

    /// <summary>Wakes a sender waiting for room: to send again, or with <paramref name="error"/> to give up.</summary>
    private void WakeSender(Exception? error = null)
    {
        TaskCompletionSource? writable;
        lock (_gate)
        {
            (writable, _writable) = (_writable, null);
            UpdateInterest();
        }
        if (error is null)
        {
            writable?.TrySetResult();
        }
        else
        {
            writable?.TrySetException(error);
        }
    }

    /// <summary>
    /// Registers what the connection waits for: reading unless paused or done, writing while the sender waits. Nothing:
    /// out of the set, because epoll reports a hang-up even to an empty mask, level-triggered, for ever. Under the gate.
    /// </summary>
    private void UpdateInterest()
    {
        var wanted = (_readDone || _readPaused ? 0 : In | ReadHup) | (_writable is null ? 0 : Out);
        if (_disposed != 0 || (wanted == _interest && _registered == (wanted != 0)))
        {
            return;
        }
        if (wanted == 0)
        {
            _loop.Control(CtlDel, _fd, 0, Key);
            _registered = false;
        }
        else
        {
            _registered = _loop.Control(_registered ? CtlMod : CtlAdd, _fd, wanted, Key) || _registered;
        }
        _interest = wanted;
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        // The peer sees the connection end; the loop finishes the input, and a sender waiting for room gives up. Not once
        // released: the descriptor's number may already name another connection's socket (the idle sweep or a stop can
        // reach a connection that is closing).
        lock (_gate)
        {
            if (_disposed != 0)
            {
                return;
            }
            Shutdown(_fd, ShutReadWrite);
        }
        _loop.Post(() =>
        {
            EndReading(abortReason);
            WakeSender(abortReason);
        });
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposing, 1) != 0)
        {
            return;
        }
        await _output.Writer.CompleteAsync().ConfigureAwait(false);
        await _input.Reader.CompleteAsync().ConfigureAwait(false);
        // Replies still unsent (QUIT's +OK, an error before a close) go out first, unless the peer does not take them.
        try
        {
            await _sending.WaitAsync(DrainTime).ConfigureAwait(false); // its timer goes with it: no timer left per closed connection
        }
        catch (TimeoutException)
        {
            Abort(new ConnectionAbortedException("the peer did not take the last replies"));
            await _sending.ConfigureAwait(false);
        }
        _loop.Post(Release);
        await _gone.Task.ConfigureAwait(false); // the token source is not disposed: its cancel may still be queued
    }

    /// <summary>Leaves the loop and closes the socket, on the loop's thread (no read of a reused descriptor can follow).</summary>
    private void Release()
    {
        lock (_gate)
        {
            if (_registered)
            {
                _loop.Control(CtlDel, _fd, 0, Key);
                _registered = false;
            }
            _disposed = 1;
            _socket.Dispose(); // under the gate: an abort either shut this socket down before, or sees it released
        }
        _loop.Remove(this);
        EndReading(null);
        _gone.TrySetResult();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
