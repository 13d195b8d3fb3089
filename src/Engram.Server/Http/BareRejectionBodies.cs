using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Engram.Server.Http;

/// <summary>
/// Gives Kestrel's own refusals a problem body. Kestrel parses the request line and headers before any
/// middleware runs, and answers what it cannot parse (a raw non-ASCII byte in the target, a malformed
/// request line, a bad Host, a target or headers beyond its limits) with a bare
/// <c>400/405/408/414/431, Content-Length: 0, Connection: close</c> (or a 505 for a request line naming
/// another HTTP version, which is answered as a 400 here) and no hook to shape it. This connection
/// middleware watches what Kestrel writes: a response head that is exactly such a bare refusal is
/// replaced by the same head with a problem body. The app never writes one itself (every error it
/// answers carries a problem body, HEAD included), and a body can never look like one (JSON escapes
/// CR and LF), so nothing else is touched; any other write passes through unchanged. A refusal of a browser's
/// <c>GET /ui…</c> (the head Kestrel last read names text/html in Accept, or ended before its headers, as a target past
/// the line limit does) gets a small HTML page with the same status instead, like the UI's own refusals.
/// </summary>
internal static class BareRejectionBodies
{
    /// <summary>Wraps every connection's output (for <c>ListenOptions.Use</c>).</summary>
    public static ConnectionDelegate Wrap(ConnectionDelegate next) => connection =>
    {
        var transport = connection.Transport;
        var heads = new HeadReader(transport.Input);
        connection.Transport = new Pipe(heads, new Writer(transport.Output, heads));
        return next(connection);
    };

    /// <summary>
    /// The problem body (or with <paramref name="html"/> an HTML page) for a bare refusal head, or null when
    /// <paramref name="head"/> is anything else.
    /// </summary>
    internal static byte[]? Rewrite(ReadOnlySpan<byte> head, bool html = false)
    {
        if (head.Length < 20 || !IsRefusal(head) || !head.EndsWith("\r\n\r\n"u8)
            || head.IndexOf("\r\nContent-Length: 0\r\n"u8) < 0 || head.IndexOf("\r\nConnection: close\r\n"u8) < 0
            || head[..^4].IndexOf("\r\n\r\n"u8) >= 0)
        {
            return null;
        }
        var status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
        if (status == 505)
        {
            // A request line naming no HTTP/1.x version is a request Engram cannot read: a client error
            // (400), as every hostile request gets, rather than Kestrel's 505.
            byte[] asBadRequest = [.. "HTTP/1.1 400 Bad Request"u8, .. head[head.IndexOf("\r\n"u8)..]];
            return WithBody(asBadRequest, 400, html, "the request line must end in HTTP/1.1 (or HTTP/1.0): Engram reads no other version on this connection");
        }
        var detail = status switch
        {
            400 => "the request could not be parsed: check the request line (a byte outside ASCII in the target must be percent-encoded as UTF-8, e.g. %C3%AB) and the Host header",
            414 => $"the request target is longer than the {RequestLimits.MaxTargetBytes} bytes Engram reads (send long filters in a body, e.g. POST /v1/search)",
            431 => $"the request headers are larger than the {RequestLimits.MaxHeaderBytes} bytes Engram reads",
            405 => "a request target of * or host:port is only for OPTIONS or CONNECT; name a path such as /v1/memories",
            408 => "the request headers did not arrive in time",
            _ => null,
        };
        return detail is null ? null : WithBody(head, status, html, detail);
    }

    private static readonly Lazy<string> Stylesheet = new(() => new Ui.UiAssets().CssPath);

    /// <summary>The UI's error page (<c>ErrorPage</c> in <c>UiLayout</c> without navigation), written here: no request reached the app to render it.</summary>
    private static string Page(string detail) => $$"""
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <title>Cannot show this · Engram</title><link rel="icon" href="data:,"><link rel="stylesheet" href="{{Stylesheet.Value}}"></head>
        <body>
        <a class="sr-only" href="#main">Skip to content</a>
        <header><a class="brand" href="/ui">Engram</a>
        </header>
        <main id="main"><h1>Cannot show this</h1><p class="notice error" role="alert">{{System.Net.WebUtility.HtmlEncode(detail)}}</p>
            <p><a href="/ui">Back to the overview</a></p></main>
        </body>
        </html>

        """;

    /// <summary>A head Kestrel writes for a request it refuses itself: a 4xx, or a 505 for a version it does not speak.</summary>
    private static bool IsRefusal(ReadOnlySpan<byte> head) => head.StartsWith("HTTP/1.1 4"u8) || head.StartsWith("HTTP/1.1 505 "u8);

    private static byte[] WithBody(ReadOnlySpan<byte> head, int status, bool html, string detail)
    {
        if (html)
        {
            var page = Encoding.UTF8.GetBytes(Page(detail));
            var headers = Encoding.Latin1.GetString(head[..^2]).Replace("\r\nContent-Length: 0\r\n",
                $"\r\nContent-Length: {page.Length}\r\nContent-Type: text/html; charset=utf-8\r\n" +
                "Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n" +
                "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-cache, no-store\r\n", StringComparison.Ordinal);
            return [.. Encoding.Latin1.GetBytes(headers + "\r\n"), .. page];
        }
        var (title, type) = Problems.KindOf(status);
        var body = Encoding.UTF8.GetBytes(
            $$"""{"type":"{{type}}","title":"{{title}}","status":{{status}},"detail":"{{detail}}"}""");
        var text = Encoding.Latin1.GetString(head[..^2]).Replace("\r\nContent-Length: 0\r\n",
            $"\r\nContent-Length: {body.Length}\r\nContent-Type: application/problem+json\r\n", StringComparison.Ordinal);
        return [.. Encoding.Latin1.GetBytes(text + "\r\n"), .. body];
    }

    private sealed class Pipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>
    /// Passes every read through; notes whether the buffer Kestrel is handed starts a browser's <c>GET /ui</c>. A bare
    /// refusal comes while Kestrel parses a head, and each head is parsed from a buffer that starts with it, so the last
    /// read before a refusal tells whose head it was. Only the first bytes are compared unless they are <c>GET /ui</c>.
    /// </summary>
    internal sealed class HeadReader(PipeReader inner) : PipeReader
    {
        /// <summary>Whether the head Kestrel last read is a GET under /ui that asks for HTML (or ended before any header was read).</summary>
        public bool WantsHtml { get; private set; }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var pending = inner.ReadAsync(cancellationToken);
            if (!pending.IsCompletedSuccessfully)
            {
                return WaitAsync(pending);
            }
            var result = pending.Result;
            WantsHtml = IsUiPageHead(result.Buffer);
            return new ValueTask<ReadResult>(result);
        }

        /// <summary>A read that waits for the socket; its state machine is pooled, as every connection waits so between requests.</summary>
        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<ReadResult> WaitAsync(ValueTask<ReadResult> pending)
        {
            var result = await pending.ConfigureAwait(false);
            WantsHtml = IsUiPageHead(result.Buffer);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }
            WantsHtml = IsUiPageHead(result.Buffer);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        /// <summary>
        /// <c>GET /ui</c>, <c>GET /ui/…</c> or <c>GET /ui?…</c> whose headers (as far as they arrived) have an Accept naming
        /// text/html. A target past Kestrel's line limit is not one (see below).
        /// </summary>
        internal static bool IsUiPageHead(ReadOnlySequence<byte> buffer)
        {
            Span<byte> start = stackalloc byte[8];
            if (buffer.Length < start.Length)
            {
                return false;
            }
            buffer.Slice(0, start.Length).CopyTo(start);
            if (!start[..7].SequenceEqual("GET /ui"u8) || start[7] is not ((byte)' ' or (byte)'/' or (byte)'?'))
            {
                return false;
            }
            var seen = buffer.Slice(0, Math.Min(buffer.Length, 2 * RequestLimits.MaxHeaderBytes + 8 * RequestLimits.MaxTargetBytes)).ToArray().AsSpan();
            var lineEnd = seen.IndexOf((byte)'\n');
            if (lineEnd < 0 || lineEnd > 8 * RequestLimits.MaxTargetBytes)
            {
                // A target past Kestrel's line limit: whether its headers were read before the refusal depends on how the
                // bytes arrived, so the answer would too. It is the API's problem body for everyone, as for any client.
                return false;
            }
            for (var rest = seen[(lineEnd + 1)..]; rest.Length > 0;)
            {
                var eol = rest.IndexOf((byte)'\n');
                var line = eol >= 0 ? rest[..eol] : rest;
                if (line.Length <= 1)
                {
                    break; // the blank line that ends the head
                }
                if (line.Length > 7 && Ascii.EqualsIgnoreCase(line[..7], "accept:"u8) && line.IndexOf("text/html"u8) >= 0)
                {
                    return true;
                }
                rest = eol >= 0 ? rest[(eol + 1)..] : [];
            }
            return false;
        }
    }

    /// <summary>Passes every write through; looks at each committed chunk only for the bare refusal head.</summary>
    private sealed class Writer(PipeWriter inner, HeadReader heads) : PipeWriter
    {
        private Memory<byte> _lent;

        public override Memory<byte> GetMemory(int sizeHint = 0) => _lent = inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

        public override void Advance(int bytes)
        {
            var lent = _lent;
            _lent = default;
            // A refusal head is ~150 bytes starting "HTTP/1.1 4"; that comparison rules out nearly every other write.
            if (bytes is >= 20 and <= 1024 && lent.Length >= bytes && IsRefusal(lent.Span)
                && Rewrite(lent.Span[..bytes], heads.WantsHtml) is { } replacement)
            {
                inner.Write(replacement); // overwrites the unadvanced bytes Kestrel wrote, then advances past the new ones
                return;
            }
            inner.Advance(bytes);
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(source, cancellationToken);
    }
}
