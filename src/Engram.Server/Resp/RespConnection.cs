using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Resp;

/// <summary>
/// One RESP client: reads commands from the connection's pipe (arrays of bulk strings, or inline commands
/// typed by hand), runs them through <see cref="KvService"/> in order and writes the replies into the
/// pipe, flushing once per batch of pipelined commands. Writes that need no earlier reply (SET, INCR, DEL,
/// …) are started without waiting for the one before, so a pipelined batch of writes joins one group
/// commit; any other command first waits for them (a GET after a SET of the same batch sees it).
/// A command's size is checked from its headers before its bytes are buffered (<see cref="RespOptions.MaxCommandBytes"/>).
/// </summary>
internal sealed partial class RespConnection
{
    private const int MaxInlineBytes = 64 * 1024;
    private const int MaxPending = 256;
    /// <summary>
    /// Commands of one read run on the socket event thread before the rest moves to the pool, so one client's long
    /// pipeline does not hold up the clients behind it (4 measured worse: the hand-off costs more than it frees).
    /// </summary>
    private const int MaxInlineCommands = 64;

    private readonly ConnectionContext _context;
    private readonly RespListener _listener;
    private readonly RespOptions _options;
    private KvService _kv; // a transaction's own while EXEC runs its commands (RespTransactions)
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private RespWriter _reply; // a buffer's while EXEC runs its commands
    private readonly List<Pending> _pending = [];
    private readonly RespTally _tally = new();
    private int _closeReason = RespStats.ClosedByClient;
    // Plain SETs of the current batch not handed to the store yet (see StartSet): written as one store write.
    private List<KvWrite> _sets = [];
    private Caller? _setsPartition;

    // The current command's arguments, copied into one buffer (a command array is parsed into the _arriving* buffers).
    private byte[] _argBytes = new byte[4096];
    private int[] _argStart = new int[16];
    private int[] _argLength = new int[16];
    private int _argCount;
    private bool _closeAfterReply;
    private readonly bool _loopback;

    public RespConnection(ConnectionContext context, RespListener listener, long id)
    {
        _context = context;
        _listener = listener;
        _options = listener.Options;
        _kv = listener.KeyValue;
        _input = context.Transport.Input;
        _output = context.Transport.Output;
        _reply = new RespWriter(_output) { Tally = _tally };
        Id = id;
        Remote = context.RemoteEndPoint as IPEndPoint;
        _loopback = Remote is { } remote && IPAddressIsLoopback(remote);
        LastActivity = Environment.TickCount64;
    }

    public long Id { get; }

    public IPEndPoint? Remote { get; }

    /// <summary><see cref="Environment.TickCount64"/> when the client last sent anything (the idle sweep reads it).</summary>
    public long LastActivity { get; private set; }

    public string? Name { get; private set; }

    /// <summary>Whether the connection waits in WAIT or WAITAOF for replicas (the idle sweep leaves it).</summary>
    public bool Blocked => Volatile.Read(ref _blocked);

    private bool _blocked;

    /// <summary>Commands run and bytes read and sent on this connection, as last reported (CLIENT LIST's tot-* fields).</summary>
    public long TotalCommands { get; private set; }

    public long TotalBytesIn { get; private set; }

    public long TotalBytesOut { get; private set; }

    /// <summary><see cref="Environment.TickCount64"/> when the connection was accepted.</summary>
    public long OpenedAt { get; } = Environment.TickCount64;

    /// <summary>The tenant of the key the client authenticated with; null before AUTH (and always in open mode).</summary>
    public string? Tenant => _authenticated?.Tenant;

    /// <summary>The wall clock as <see cref="ReadNowMs"/> read it for the input being run; 0: not read yet.</summary>
    private long _readNowMs;

    /// <summary>
    /// The wall clock in unix milliseconds, read once per arrival of input: the SETs of a pipeline take their expiries from
    /// one reading, as Redis takes a command's time from its event loop's turn. A reading cost ~20 ns on a virtual machine,
    /// and a plain SET made two.
    /// </summary>
    private long ReadNowMs() => _readNowMs != 0 ? _readNowMs : _readNowMs = _kv.NowMs;

    /// <summary>Closes the connection for idle time-out (the idle sweep).</summary>
    public void Abort()
    {
        _closeReason = RespStats.ClosedIdle;
        _context.Abort(new ConnectionAbortedException("idle time-out"));
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            while (!_closeAfterReply)
            {
                var result = await _input.ReadAsync(stopping).ConfigureAwait(false);
                LastActivity = Environment.TickCount64;
                _readNowMs = 0;
                var buffer = result.Buffer;
                long consumed = 0;
                long counted = 0; // of consumed, in the tally already
                var ran = false;
                var inline = 0;
                try
                {
                    while (!_closeAfterReply)
                    {
                        var parsed = TryParseAt(buffer, consumed, out var used);
                        consumed += used; // a command still arriving gives up its complete arguments too
                        if (!parsed)
                        {
                            break;
                        }
                        ran = true;
                        if (OnEventThread && ++inline > MaxInlineCommands)
                        {
                            await Task.Yield(); // a long pipeline: the rest on the pool, so the event thread serves other clients
                        }
                        if (!TryGetFromMemory())
                        {
                            await ExecuteAsync(stopping).ConfigureAwait(false);
                        }
                        if (UnflushedPastBound)
                        {
                            _tally.BytesIn += consumed - counted;
                            counted = consumed;
                            _closeAfterReply = !await SendAsync(stopping).ConfigureAwait(false);
                        }
                    }
                }
                catch (RespProtocolException ex)
                {
                    await DrainAsync().ConfigureAwait(false);
                    _reply.Error("ERR Protocol error: " + ex.Message);
                    _closeAfterReply = true;
                    _closeReason = ex.Oversized ? RespStats.ClosedOversized : RespStats.ClosedProtocol;
                }
                _tally.BytesIn += consumed - counted;
                var arriving = buffer.Length - consumed + (_arriving >= 0 ? _arrivedBytes : 0);
                _input.AdvanceTo(buffer.GetPosition(consumed), buffer.End);
                if (!_closeAfterReply && !HoldArriving(arriving))
                {
                    _reply.Error($"ERR partly received commands of all connections would pass the server's bound of {_options.MaxArrivingBytes} bytes " +
                        "(Engram:Resp:MaxArrivingBytes); this command is refused and the connection closed");
                    _closeAfterReply = true;
                    _closeReason = RespStats.ClosedOversized;
                }
                if (ran || _closeAfterReply)
                {
                    await DrainAsync().ConfigureAwait(false);
                    ShrinkBuffers();
                    if (!await SendAsync(stopping).ConfigureAwait(false))
                    {
                        break;
                    }
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionResetException or ConnectionAbortedException or IOException or InvalidOperationException)
        {
            // The client went away, the server is stopping, or the idle sweep closed the connection.
        }
        finally
        {
            await DrainQuietlyAsync().ConfigureAwait(false);
            EndTransaction(); // a MULTI left open gives back its share of the queue bound
            HoldArriving(0); // and a command left half sent its share of the arriving bound
            Report();
            _listener.Stats.Close(_closeReason);
            await _input.CompleteAsync().ConfigureAwait(false);
            await _output.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Bytes of a command still arriving that a connection holds without counting them in the listener's bound.</summary>
    private const long OwnArrivingBytes = 16 * 1024;

    /// <summary>What of <see cref="RespOptions.MaxArrivingBytes"/> this connection holds.</summary>
    private long _arrivingCounted;

    /// <summary>
    /// Counts the <paramref name="arriving"/> bytes of a partly received command (in the input buffer and copied) in the
    /// listener's bound, past the connection's own first <see cref="OwnArrivingBytes"/>; false when they would pass it.
    /// </summary>
    private bool HoldArriving(long arriving)
    {
        var counted = arriving > OwnArrivingBytes ? arriving : 0;
        var more = counted - _arrivingCounted;
        if (more > 0 && !_listener.TryReserveArriving(more))
        {
            return false;
        }
        if (more < 0)
        {
            _listener.ReleaseArriving(-more);
        }
        _arrivingCounted = counted;
        return true;
    }

    /// <summary>
    /// Past this many bytes of replies not yet sent, the connection sends them before it runs the next command of a
    /// pipeline (or the next keys of an MGET). Sending waits while the socket is full, so a client that pipelines
    /// commands with large replies and does not read them stops its own connection at about this much buffered, as
    /// the bounded command buffer stops one that sends too much. Without it a read of pipelined GETs (up to the
    /// transport's 1 MB input buffer, some 45,000 commands) ran to its end and held every reply in memory.
    /// </summary>
    internal const int MaxUnsentReplyBytes = 256 * 1024;

    private bool UnflushedPastBound => _transactionCaller is null && _output.CanGetUnflushedBytes && _output.UnflushedBytes >= MaxUnsentReplyBytes;

    /// <summary>Sends the replies written so far; false when the client has gone (nothing more can be sent).</summary>
    private async ValueTask<bool> SendAsync(CancellationToken stopping)
    {
        if (_output.CanGetUnflushedBytes)
        {
            _tally.BytesOut += _output.UnflushedBytes;
        }
        Report();
        var flushed = await _output.FlushAsync(stopping).ConfigureAwait(false);
        return !flushed.IsCompleted;
    }

    /// <summary>Adds the tally to the endpoint's figures (INFO, metrics) and to this connection's own (CLIENT LIST).</summary>
    private void Report()
    {
        var commands = 0L;
        foreach (var count in _tally.Commands)
        {
            commands += count;
        }
        TotalCommands += commands;
        TotalBytesIn += _tally.BytesIn;
        TotalBytesOut += _tally.BytesOut;
        _listener.Stats.Add(_tally);
    }

    // ---- Parsing ---------------------------------------------------------------------------------------

    /// <summary>
    /// Reads one command starting <paramref name="offset"/> bytes into <paramref name="buffer"/>; false when more bytes
    /// are needed. <paramref name="used"/> is what was consumed either way: a command array's complete arguments are
    /// copied into the arriving command's buffers as they come and the parse resumes after them on the next read, so a command
    /// of a million arguments is read once, not again from its start for every chunk. A command array in one
    /// contiguous buffer (nearly always) is parsed from a span.
    /// </summary>
    private bool TryParseAt(in ReadOnlySequence<byte> buffer, long offset, out long used)
    {
        if (buffer.IsSingleSegment)
        {
            var span = buffer.FirstSpan[(int)offset..];
            if (span.IsEmpty)
            {
                used = 0;
                return false;
            }
            if (_arriving >= 0 || span[0] == (byte)'*')
            {
                var parsed = TryParseArray(span, out var length);
                used = length;
                return parsed;
            }
        }
        var reader = new SequenceReader<byte>(buffer.Slice(offset));
        return TryParse(ref reader, out used);
    }

    // A command array still arriving: how many arguments it has (-1 when none is), how many are complete, and where
    // they are. It has buffers of its own, swapped with the current command's when it is complete: a script queued
    // before it runs at the end of the read (RunQueuedScriptsAsync) and loads its redis.calls' arguments meanwhile.
    private int _arriving = -1;
    private int _arrived;
    private int _arrivedBytes;
    private byte[] _arrivingBytes = new byte[4096];
    private int[] _arrivingStart = new int[16];
    private int[] _arrivingLength = new int[16];

    /// <summary>Starts a command array of <paramref name="count"/> arguments; false when it is empty (skipped, as Redis does).</summary>
    private bool BeginArray(long count)
    {
        if (count > _options.MaxArguments)
        {
            throw new RespProtocolException("invalid multibulk length", oversized: true);
        }
        if (count <= 0)
        {
            return false;
        }
        _arriving = (int)count;
        _arrived = 0;
        _arrivedBytes = 0;
        return true;
    }

    /// <summary>Checks the next argument's length against the command bounds before its bytes are waited for.</summary>
    private void CheckBulkLength(long length)
    {
        if (length < 0 || length > _options.MaxCommandBytes || _arrivedBytes + length > _options.MaxCommandBytes)
        {
            throw new RespProtocolException("invalid bulk length", oversized: length > 0);
        }
    }

    /// <summary>Takes note of an argument whose bytes were copied to the end of the argument buffer.</summary>
    private void Arrived(int length)
    {
        if (_arrivingStart.Length == _arrived)
        {
            // Grown as arguments come, not from the header, which costs a client nothing to send.
            Array.Resize(ref _arrivingStart, _arrived * 2);
            Array.Resize(ref _arrivingLength, _arrived * 2);
        }
        _arrivingStart[_arrived] = _arrivedBytes;
        _arrivingLength[_arrived] = length;
        _arrived++;
        _arrivedBytes += length;
    }

    /// <summary>Room in the arriving command's buffer for <paramref name="length"/> more bytes.</summary>
    private Span<byte> ArrivingRoom(int length)
    {
        var size = _arrivedBytes + length;
        if (_arrivingBytes.Length < size)
        {
            Array.Resize(ref _arrivingBytes, Math.Max(size, Math.Min(_arrivingBytes.Length * 2, _options.MaxCommandBytes)));
        }
        return _arrivingBytes.AsSpan(_arrivedBytes, length);
    }

    /// <summary>The command array is complete: its arguments become the current command (the buffers trade places).</summary>
    private bool Complete()
    {
        (_argBytes, _arrivingBytes) = (_arrivingBytes, _argBytes);
        (_argStart, _arrivingStart) = (_arrivingStart, _argStart);
        (_argLength, _arrivingLength) = (_arrivingLength, _argLength);
        _argCount = _arriving;
        _arriving = -1;
        return true;
    }

    /// <summary><see cref="TryParse"/> for a command array (<c>*</c>) held in one span: the same checks and errors.</summary>
    private bool TryParseArray(ReadOnlySpan<byte> span, out int used)
    {
        used = 0;
        _argCount = 0;
        var position = 0;
        if (_arriving < 0)
        {
            position = 1;
            if (!TryReadNumber(span, ref position, out var count, "invalid multibulk length"))
            {
                return false;
            }
            used = position;
            if (!BeginArray(count))
            {
                return true;
            }
        }
        while (_arrived < _arriving)
        {
            if (position >= span.Length)
            {
                return false;
            }
            if (span[position] != (byte)'$')
            {
                throw new RespProtocolException($"expected '$', got '{(char)span[position]}'");
            }
            var at = position + 1;
            if (!TryReadNumber(span, ref at, out var length, "invalid bulk length"))
            {
                return false;
            }
            CheckBulkLength(length);
            if (span.Length - at < length + 2)
            {
                return false;
            }
            span.Slice(at, (int)length).CopyTo(ArrivingRoom((int)length));
            at += (int)length;
            if (span[at] != (byte)'\r' || span[at + 1] != (byte)'\n')
            {
                throw new RespProtocolException("expected CRLF after a bulk string");
            }
            Arrived((int)length);
            position = used = at + 2;
        }
        return Complete();
    }

    /// <summary>
    /// A header line's number (<c>*3</c>, <c>$5</c>), which must end in CRLF. A bare LF is refused (Redis would wait for a CR
    /// that may never come), and so is a CR followed by anything but LF: Redis skips the byte after the CR whatever it is
    /// and reads on from there, so <c>*1\r$4\rPING\r</c> got a protocol error only by luck of what followed, and waiting for
    /// an LF after <c>*1\r</c> as this parser did (up to 32 bytes) left a client that ends lines with CR alone waiting for a
    /// reply forever.
    /// </summary>
    private static bool TryReadNumber(ReadOnlySpan<byte> span, ref int position, out long value, string error)
    {
        value = 0;
        var rest = span[position..];
        var end = rest.IndexOfAny((byte)'\r', (byte)'\n');
        if (end < 0 || (rest[end] == '\r' && end + 1 == rest.Length))
        {
            if (rest.Length > 32)
            {
                throw new RespProtocolException(error);
            }
            return false;
        }
        if (rest[end] != '\r' || rest[end + 1] != '\n' || !RespInteger.TryParse(rest[..end], out value))
        {
            throw new RespProtocolException(error);
        }
        position += end + 2;
        return true;
    }

    /// <summary>Reads one command (an inline one into the argument buffer, an array through the arriving command's); false when more bytes are needed (see <see cref="TryParseAt"/>).</summary>
    private bool TryParse(ref SequenceReader<byte> reader, out long used)
    {
        used = 0;
        _argCount = 0;
        if (_arriving < 0)
        {
            if (!reader.TryPeek(out var first))
            {
                return false;
            }
            if (first != '*')
            {
                var done = TryParseInline(ref reader);
                used = reader.Consumed;
                return done;
            }
            reader.Advance(1);
            if (!TryReadNumber(ref reader, out var count, "invalid multibulk length"))
            {
                return false;
            }
            used = reader.Consumed;
            if (!BeginArray(count))
            {
                return true;
            }
        }
        while (_arrived < _arriving)
        {
            if (!reader.TryRead(out var kind))
            {
                return false;
            }
            if (kind != '$')
            {
                throw new RespProtocolException($"expected '$', got '{(char)kind}'");
            }
            if (!TryReadNumber(ref reader, out var length, "invalid bulk length"))
            {
                return false;
            }
            CheckBulkLength(length);
            if (reader.Remaining < length + 2)
            {
                return false;
            }
            reader.UnreadSequence.Slice(0, length).CopyTo(ArrivingRoom((int)length));
            reader.Advance(length);
            if (!reader.IsNext("\r\n"u8, advancePast: true))
            {
                throw new RespProtocolException("expected CRLF after a bulk string");
            }
            Arrived((int)length);
            used = reader.Consumed;
        }
        return Complete();
    }

    /// <summary><see cref="TryReadNumber(ReadOnlySpan{byte}, ref int, out long, string)"/> over a sequence: the same rules.</summary>
    private static bool TryReadNumber(ref SequenceReader<byte> reader, out long value, string error)
    {
        value = 0;
        var start = reader.Position;
        var startConsumed = reader.Consumed;
        if (!reader.TryAdvanceToAny("\r\n"u8, advancePastDelimiter: false) || (reader.TryPeek(out var ending) && ending == '\r' && reader.Remaining < 2))
        {
            reader.Rewind(reader.Consumed - startConsumed); // a miss may leave the reader at the end
            if (reader.Remaining > 32)
            {
                throw new RespProtocolException(error);
            }
            return false;
        }
        var digits = reader.Sequence.Slice(start, reader.Position);
        Span<byte> copy = stackalloc byte[32];
        if (!reader.IsNext("\r\n"u8, advancePast: true) || digits.Length > copy.Length)
        {
            throw new RespProtocolException(error);
        }
        digits.CopyTo(copy);
        if (!RespInteger.TryParse(copy[..(int)digits.Length], out value))
        {
            throw new RespProtocolException(error);
        }
        return true;
    }

    /// <summary>
    /// A command typed by hand (telnet), up to a line break, split into arguments as Redis splits it: at white space,
    /// except inside double quotes (with <c>\n \r \t \b \a \\ \"</c> and <c>\xHH</c> escapes) or single quotes (with
    /// <c>\'</c>); a closing quote must end its argument. Unbalanced quotes are a protocol error, as in Redis.
    /// </summary>
    private bool TryParseInline(ref SequenceReader<byte> reader)
    {
        if (!reader.TryReadTo(out ReadOnlySequence<byte> lineSequence, (byte)'\n'))
        {
            if (reader.Remaining > MaxInlineBytes)
            {
                throw new RespProtocolException("too big inline request", oversized: true);
            }
            return false;
        }
        var line = lineSequence.IsSingleSegment ? lineSequence.FirstSpan : lineSequence.ToArray();
        if (line.Length > 0 && line[^1] == '\r')
        {
            line = line[..^1];
        }
        EnsureBytes(line.Length); // an argument never decodes longer than it was typed
        var position = 0;
        var used = 0;
        var count = 0;
        while (true)
        {
            while (position < line.Length && IsInlineSpace(line[position]))
            {
                position++;
            }
            if (position >= line.Length)
            {
                break;
            }
            EnsureArguments(count + 1);
            _argStart[count] = used;
            var quote = line[position] is (byte)'"' or (byte)'\'' ? line[position++] : (byte)0;
            while (true)
            {
                if (position >= line.Length)
                {
                    if (quote != 0)
                    {
                        throw new RespProtocolException("unbalanced quotes in request");
                    }
                    break;
                }
                var b = line[position];
                if (quote == 0)
                {
                    if (IsInlineSpace(b))
                    {
                        break;
                    }
                    _argBytes[used++] = b;
                    position++;
                }
                else if (b == quote)
                {
                    position++;
                    if (position < line.Length && !IsInlineSpace(line[position]))
                    {
                        throw new RespProtocolException("unbalanced quotes in request"); // "a"b: the quote must end the argument
                    }
                    break;
                }
                else if (b == '\\' && position + 1 < line.Length)
                {
                    position += InlineEscape(line, position, quote, out var decoded);
                    _argBytes[used++] = decoded;
                }
                else
                {
                    _argBytes[used++] = b;
                    position++;
                }
            }
            _argLength[count] = used - _argStart[count];
            count++;
            if (count > _options.MaxArguments)
            {
                throw new RespProtocolException("invalid multibulk length", oversized: true);
            }
        }
        _argCount = count;
        return true;
    }

    private static bool IsInlineSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)'\v' or (byte)'\f';

    /// <summary>The byte a backslash escape at <paramref name="at"/> stands for inside quotes, and how many bytes it took.</summary>
    private static int InlineEscape(ReadOnlySpan<byte> line, int at, byte quote, out byte decoded)
    {
        var next = line[at + 1];
        if (quote == '\'')
        {
            // Single quotes know one escape, \'; any other backslash is itself.
            decoded = next == '\'' ? (byte)'\'' : (byte)'\\';
            return next == '\'' ? 2 : 1;
        }
        if (next == 'x' && at + 3 < line.Length && IsHex(line[at + 2]) && IsHex(line[at + 3]))
        {
            decoded = (byte)((HexValue(line[at + 2]) << 4) | HexValue(line[at + 3]));
            return 4;
        }
        decoded = next switch
        {
            (byte)'n' => (byte)'\n',
            (byte)'r' => (byte)'\r',
            (byte)'t' => (byte)'\t',
            (byte)'b' => (byte)'\b',
            (byte)'a' => 7,
            _ => next,
        };
        return 2;
    }

    private static bool IsHex(byte b) => char.IsAsciiHexDigit((char)b);

    private static int HexValue(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;

    private void EnsureArguments(int count)
    {
        if (_argStart.Length < count)
        {
            var size = Math.Max(count, _argStart.Length * 2);
            Array.Resize(ref _argStart, size);
            Array.Resize(ref _argLength, size);
        }
    }

    private void EnsureBytes(int size)
    {
        if (_argBytes.Length < size)
        {
            Array.Resize(ref _argBytes, Math.Max(size, Math.Min(_argBytes.Length * 2, _options.MaxCommandBytes)));
        }
    }

    /// <summary>A connection that once sent a large value does not keep its buffer.</summary>
    private void ShrinkBuffers()
    {
        if (_argBytes.Length > 64 * 1024)
        {
            _argBytes = new byte[4096];
        }
        if (_argStart.Length > 1024)
        {
            _argStart = new int[16];
            _argLength = new int[16];
        }
        if (_arriving < 0 && _arrivingBytes.Length > 64 * 1024)
        {
            _arrivingBytes = new byte[4096];
        }
        if (_arriving < 0 && _arrivingStart.Length > 1024)
        {
            _arrivingStart = new int[16];
            _arrivingLength = new int[16];
        }
    }

    /// <summary>
    /// True on the socket engine's event thread (<see cref="RespOptions.InlineCompletions"/>; it is not a pool thread):
    /// every socket of the process waits while code runs there, so a command that may block (a SQLite read, a key
    /// check, a scan) first yields to the thread pool. Continuations of the store's writes run on pool threads.
    /// </summary>
    private bool OnEventThread => _transactionCaller is null && !Thread.CurrentThread.IsThreadPoolThread; // (EXEC's commands run where the store runs them)

    private ReadOnlySpan<byte> Arg(int i) => _argBytes.AsSpan(_argStart[i], _argLength[i]);

    /// <summary>The argument as text; a key or pattern that is not UTF-8 is refused.</summary>
    private string Text(int i) => RespWriter.TryDecode(Arg(i)) ?? throw new ValidationException("key", "the key is not valid UTF-8");

    private bool Is(int i, ReadOnlySpan<byte> upper) => Ascii.EqualsIgnoreCase(Arg(i), upper);

    private bool TryLong(int i, out long value) => RespInteger.TryParse(Arg(i), out value);

    // ---- Pending writes -------------------------------------------------------------------------------

    private enum PendingKind
    {
        Ok,
        OkOrNull,
        Integer,
        OneOrZero,
        /// <summary><see cref="Pending.Count"/> plain SETs written together: that many +OK (or errors).</summary>
        OkMany,
    }

    private readonly record struct Pending(Task Task, PendingKind Kind, int Count = 1);

    /// <summary>Writes and commands waiting for their replies, the SETs not handed over yet included.</summary>
    private int PendingCount => _pending.Count + _sets.Count;

    /// <summary>Records a started write; the queued SETs must have been submitted before it started (<see cref="SubmitSets"/>).</summary>
    private void Defer(Task task, PendingKind kind)
    {
        Debug.Assert(_sets.Count == 0, "queued SETs must reach the writer before a later write");
        _pending.Add(new Pending(task, kind));
    }

    /// <summary>
    /// Queues a checked plain SET (no condition, reply +OK). The run of SETs a pipelined batch holds goes to
    /// the store as one write at the next hand-off (<see cref="SubmitSets"/>: before any other write, any other
    /// command and at the end of the batch), instead of one writer item, task and queue hand-off per SET.
    /// </summary>
    private void QueueSet(KvPreparedSet set)
    {
        if (_setsPartition is not null && !_setsPartition.Equals(set.Partition))
        {
            SubmitSets();
        }
        _sets.Add(set.Write);
        _setsPartition = set.Partition;
    }

    /// <summary>
    /// Whether a write this connection started has not finished: a SET must then take effect after it, as Redis runs a
    /// client's commands in order (the store may otherwise acknowledge a plain SET ahead of writes it has queued, see
    /// <see cref="KvService.SetPreparedAsync(KvPreparedSet, bool, CancellationToken)"/>).
    /// </summary>
    private bool WritesUnderWay
    {
        get
        {
            foreach (var pending in _pending)
            {
                if (!pending.Task.IsCompleted)
                {
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>Hands the queued SETs to the store as one write; their replies come at the next drain.</summary>
    private void SubmitSets()
    {
        if (_sets.Count == 0)
        {
            return;
        }
        // The batch leaves this connection's state before the store sees it, and a store that refuses it at once (a
        // transaction's store throws rather than fault its task) fails its commands' replies: a SET left behind would be
        // written by the next drain, outside the script or EXEC that made it.
        var partition = _setsPartition!;
        _setsPartition = null;
        Task write;
        if (_sets.Count == 1)
        {
            // An unpipelined client: one write as it is, and the list stays for the next batch.
            var set = new KvPreparedSet(partition, _sets[0]);
            _sets.Clear();
            try
            {
                write = _kv.SetPreparedAsync(set, WritesUnderWay);
            }
            catch (Exception ex)
            {
                write = Task.FromException(ex);
            }
            _pending.Add(new Pending(write, PendingKind.Ok));
            return;
        }
        var writes = _sets;
        _sets = [];
        try
        {
            write = _kv.SetPreparedAsync(partition, writes, WritesUnderWay);
        }
        catch (Exception ex)
        {
            write = Task.FromException(ex);
        }
        _pending.Add(new Pending(write, PendingKind.OkMany, writes.Count));
    }

    /// <summary>Waits for the writes under way, in order, and writes their replies.</summary>
    private async ValueTask DrainAsync()
    {
        await RunQueuedScriptsAsync(default).ConfigureAwait(false);
        SubmitSets();
        if (_pending.Count == 0)
        {
            _readNowMs = 0; // scripts may have run a while: later commands read the clock again
            return;
        }
        foreach (var pending in _pending)
        {
            try
            {
                await pending.Task.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                for (var i = 0; i < pending.Count; i++)
                {
                    ReplyFailure(ex);
                }
                continue;
            }
            switch (pending.Kind)
            {
                case PendingKind.OkMany:
                    for (var i = 0; i < pending.Count; i++)
                    {
                        _reply.Ok();
                    }
                    break;
                case PendingKind.Ok:
                    _reply.Ok();
                    break;
                case PendingKind.OkOrNull:
                    if (((Task<bool>)pending.Task).Result)
                    {
                        _reply.Ok();
                    }
                    else
                    {
                        _reply.Null();
                    }
                    break;
                case PendingKind.Integer:
                    _reply.Integer(((Task<long>)pending.Task).Result);
                    break;
                case PendingKind.OneOrZero:
                    _reply.Integer(((Task<bool>)pending.Task).Result ? 1 : 0);
                    break;
            }
        }
        _pending.Clear();
        _readNowMs = 0; // the writes took a while: later commands read the clock again
    }

    private async Task DrainQuietlyAsync()
    {
        try
        {
            await RunQueuedScriptsAsync(default).ConfigureAwait(false); // scripts it sent run as they would have, too
        }
        catch (Exception ex)
        {
            _listener.Log.LogDebug(ex, "RESP scripts failed after their client left");
        }
        SubmitSets(); // SETs the client sent are written as they would have been had it stayed
        foreach (var pending in _pending)
        {
            try
            {
                await pending.Task.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _listener.Log.LogDebug(ex, "A RESP write failed after its client left");
            }
        }
        _pending.Clear();
    }

    /// <summary>The reply for a command that failed: Redis's codes where one fits, the service's own message otherwise.</summary>
    private void ReplyFailure(Exception ex)
    {
        switch (ex)
        {
            case RespErrorReplyException reply:
                _reply.Error(reply.Message);
                break;
            case ValidationException v:
                _reply.Error("ERR " + v.Message);
                break;
            case ForbiddenException f:
                _reply.Error("NOPERM " + f.Message);
                break;
            case Core.Operations.WritesRefusedException w:
                _reply.Error((w.Reason == Core.Operations.WriteRefusal.ReadOnly ? "READONLY " : "OOM ") + w.Message);
                break;
            case ConflictException c when c.Message.Contains("overflow", StringComparison.Ordinal):
                _reply.Error("ERR increment or decrement would overflow");
                break;
            case ConflictException:
                _reply.Error("ERR value is not an integer or out of range");
                break;
            case EngramException e:
                _reply.Error("ERR " + e.Message);
                break;
            case Core.Storage.StoreException s:
                _listener.Log.LogWarning(s, "A RESP command failed in the store");
                _reply.Error("ERR the store failed: " + s.Message);
                break;
            case OperationCanceledException:
                throw ex;
            default:
                _listener.Log.LogError(ex, "A RESP command failed");
                _reply.Error("ERR internal error");
                break;
        }
    }
}

/// <summary>The client broke the protocol: the reply is an error and the connection is closed.</summary>
/// <summary>A deferred command's refusal, answered with <see cref="Exception.Message"/> as the error reply, as Redis words it.</summary>
internal sealed class RespErrorReplyException(string reply) : Exception(reply);

internal sealed class RespProtocolException(string message, bool oversized = false) : Exception(message)
{
    /// <summary>Whether the command was refused for its size (a bulk string, argument count or inline line over the limits).</summary>
    public bool Oversized => oversized;
}
