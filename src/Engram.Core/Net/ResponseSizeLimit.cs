namespace Engram.Core.Net;

/// <summary>
/// Bounds an outbound answer's body: one that says (Content-Length) or turns out to be longer than the bound fails with
/// <see cref="ResponseTooLargeException"/>. Engram's clients buffer most answers whole (a model's JSON, a webhook
/// receiver's reply), so without it an endpoint that sends without end would grow the server's memory until it dies.
/// </summary>
internal sealed class ResponseSizeLimit(long maxBytes) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var origin = request.RequestUri?.GetLeftPart(UriPartial.Authority) ?? "the endpoint";
        if (response.Content.Headers.ContentLength is { } length && length > maxBytes)
        {
            response.Dispose();
            throw new ResponseTooLargeException(TooLarge(origin, maxBytes));
        }
        var original = response.Content;
        var limited = new StreamContent(new LimitedStream(await original.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), maxBytes, origin));
        foreach (var header in original.Headers)
        {
            limited.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
        response.Content = limited;
        return response;
    }

    internal static string TooLarge(string origin, long maxBytes) =>
        $"the answer from {origin} is longer than {maxBytes / (1024 * 1024.0):0.#} MB; it was not read further";

    /// <summary>A read-only stream that throws once more than <c>max</c> bytes have come through.</summary>
    private sealed class LimitedStream(Stream inner, long max, string origin) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Count(int read)
        {
            _read += read;
            if (_read > max)
            {
                throw new ResponseTooLargeException(TooLarge(origin, max));
            }
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
