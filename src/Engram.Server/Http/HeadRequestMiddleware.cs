using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// Answers HEAD like GET for every route at once (RFC 9110 §9.3.2): the request runs as a GET, so it
/// gets the same status and headers (Content-Type, ETag, problem bodies' type), and what the GET would
/// write is only counted, to send as Content-Length, never sent. Endpoints map GET only.
/// </summary>
internal sealed class HeadRequestMiddleware(RequestDelegate next)
{
    // Not async on the way through: every other request passes without a state machine of its own.
    public Task InvokeAsync(HttpContext context) => HttpMethods.IsHead(context.Request.Method) ? AsGetAsync(context) : next(context);

    private async Task AsGetAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var body = response.Body;
        await using var counter = new CountingStream();
        request.Method = HttpMethods.Get;
        response.Body = counter;
        try
        {
            await next(context);
        }
        finally
        {
            request.Method = HttpMethods.Head;
            response.Body = body;
        }
        if (!response.HasStarted && response.ContentLength is null && counter.Length > 0)
        {
            response.ContentLength = counter.Length;
        }
    }

    /// <summary>A write-only stream that keeps nothing but the number of bytes written.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _length;

        public override long Position
        {
            get => _length;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => _length += count;

        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            _length += count;
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _length += buffer.Length;
            return ValueTask.CompletedTask;
        }

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
