using System.Text;

namespace Engram.Server.Mcp;

/// <summary>
/// The two ends of MCP's stdio transport (one JSON-RPC message per line), checked line by line. The SDK's stdio
/// transport skipped a line it could not read without a word to the client (a probe, session 41: <c>garbage</c>,
/// <c>null</c>, <c>[]</c> or an object id got no answer while HTTP answers 400 with -32600), so a client waited for
/// ever. <see cref="Input"/> passes on only lines that are JSON-RPC-shaped objects and answers the others on
/// <see cref="Output"/> (<see cref="JsonRpcEnvelope"/>): -32700 for text that is not JSON, -32600 for JSON that is not a
/// request, with id null as JSON-RPC says. <see cref="Output"/> writes whole lines under one lock, so an answer from here never lands inside
/// one of the SDK's.
/// </summary>
public sealed class StdioLines
{
    /// <summary>The longest line read (as the HTTP endpoint's body bound; a longer one is answered -32600 and skipped).</summary>
    public const int MaxLineBytes = 4 * 1024 * 1024;

    /// <summary>The process's own stdin and stdout, checked (made once: the streams are the process's).</summary>
    public static StdioLines Stdin => ProcessStreams.Value;

    private static readonly Lazy<StdioLines> ProcessStreams = new(() => new StdioLines(Console.OpenStandardInput(), Console.OpenStandardOutput()));

    public StdioLines(Stream stdin, Stream stdout)
    {
        Output = new LineWriter(stdout);
        Input = new LineReader(stdin, (LineWriter)Output);
    }

    /// <summary>What the SDK reads: the lines that may be messages.</summary>
    public Stream Input { get; }

    /// <summary>What the SDK writes to: stdout, one whole line at a time.</summary>
    public Stream Output { get; }

    /// <summary>The answer to a line that is not a message, or null when it may be one (or is blank).</summary>
    internal static string? Refusal(ReadOnlyMemory<byte> line) =>
        line.Span.Trim(" \t\r"u8).IsEmpty ? null
        : JsonRpcEnvelope.Refusal(line, "the line") is { } refusal ? Error(refusal.Code, refusal.Message)
        : null;

    internal static string Error(int code, string message) => JsonRpcEnvelope.Error(code, message);

    /// <summary>stdout, written a whole line at a time under a lock.</summary>
    private sealed class LineWriter(Stream inner) : Stream
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly MemoryStream _pending = new();

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            // The SDK may write a message in pieces; it goes out once its line is complete.
            var newline = buffer.Span.LastIndexOf((byte)'\n');
            if (newline < 0)
            {
                _pending.Write(buffer.Span);
                return;
            }
            _pending.Write(buffer.Span[..(newline + 1)]);
            var line = _pending.ToArray();
            _pending.SetLength(0);
            _pending.Write(buffer.Span[(newline + 1)..]);
            await WriteLineAsync(line, cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        /// <summary>Writes whole lines (ending in '\n') and flushes, with no other line in between.</summary>
        public async Task WriteLineAsync(ReadOnlyMemory<byte> lines, CancellationToken ct)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await inner.WriteAsync(lines, ct).ConfigureAwait(false);
                await inner.FlushAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask; // each line is flushed as it goes

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>stdin, passing on only the lines that may be messages; the others are answered on the writer.</summary>
    private sealed class LineReader(Stream inner, LineWriter answers) : Stream
    {
        private readonly byte[] _chunk = new byte[64 * 1024];
        private readonly MemoryStream _line = new();
        private byte[] _ready = [];
        private int _readyAt;
        private bool _skippingLongLine;
        private bool _ended;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_readyAt == _ready.Length)
            {
                if (_ended)
                {
                    return 0;
                }
                var read = await inner.ReadAsync(_chunk, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    _ended = true;
                    // A last line without its newline is still a message.
                    await TakeLineAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                await SplitAsync(_chunk.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
            var n = Math.Min(buffer.Length, _ready.Length - _readyAt);
            _ready.AsSpan(_readyAt, n).CopyTo(buffer.Span);
            _readyAt += n;
            return n;
        }

        private async Task SplitAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            var passed = new MemoryStream();
            while (!data.IsEmpty)
            {
                var newline = data.Span.IndexOf((byte)'\n');
                var piece = newline < 0 ? data : data[..newline];
                if (!_skippingLongLine)
                {
                    if (_line.Length + piece.Length > MaxLineBytes)
                    {
                        _skippingLongLine = true;
                        _line.SetLength(0);
                        await AnswerAsync(Error(-32600, $"Invalid Request: a message is at most {MaxLineBytes} bytes"), ct).ConfigureAwait(false);
                    }
                    else
                    {
                        _line.Write(piece.Span);
                    }
                }
                if (newline < 0)
                {
                    break;
                }
                if (_skippingLongLine)
                {
                    _skippingLongLine = false;
                }
                else if (await CheckAsync(ct).ConfigureAwait(false) is { } message)
                {
                    passed.Write(message);
                    passed.WriteByte((byte)'\n');
                }
                _line.SetLength(0);
                data = data[(newline + 1)..];
            }
            _ready = passed.ToArray();
            _readyAt = 0;
        }

        private async Task TakeLineAsync(CancellationToken ct)
        {
            var message = _skippingLongLine ? null : await CheckAsync(ct).ConfigureAwait(false);
            _line.SetLength(0);
            _ready = message is null ? [] : [.. message, (byte)'\n'];
            _readyAt = 0;
        }

        /// <summary>The line in <see cref="_line"/> if it may be a message; otherwise it is answered and null returned.</summary>
        private async Task<byte[]?> CheckAsync(CancellationToken ct)
        {
            var line = _line.GetBuffer().AsMemory(0, (int)_line.Length);
            if (Refusal(line) is { } refusal)
            {
                await AnswerAsync(refusal, ct).ConfigureAwait(false);
                return null;
            }
            return line.Span.Trim(" \t\r"u8).IsEmpty ? null : line.ToArray();
        }

        private Task AnswerAsync(string json, CancellationToken ct) => answers.WriteLineAsync(Encoding.UTF8.GetBytes(json + "\n"), ct);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
