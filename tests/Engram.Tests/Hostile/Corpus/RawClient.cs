using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// One hostile HTTP/1.1 request, sent byte for byte as described (HttpClient re-encodes targets, adds
/// its own Content-Length and refuses odd headers): the target is written verbatim, the body may be
/// any bytes, and the announced length may lie.
/// </summary>
internal sealed record HostileRequest(string Method, string Target, byte[]? Body = null, string? ContentType = "application/json")
{
    /// <summary>Extra header lines, written as given (duplicates allowed; a null value writes the name alone, a malformed line).</summary>
    public IReadOnlyList<(string Name, string? Value)> Headers { get; init; } = [];

    /// <summary>The Content-Length to announce instead of the body's length (a lie), or null.</summary>
    public string? AnnouncedLength { get; init; }

    /// <summary>No Content-Length header at all (with a body: the server sees none).</summary>
    public bool OmitLength { get; init; }

    /// <summary>Close the sending side after the body, so a server waiting for announced bytes sees the end.</summary>
    public bool HalfClose { get; init; }

    /// <summary>The whole request line instead of "METHOD target HTTP/1.1" (malformed request lines).</summary>
    public string? RequestLine { get; init; }

    /// <summary>No Host header (HTTP/1.1 requires one).</summary>
    public bool OmitHost { get; init; }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}

/// <summary>What came back: the status (0 when the server closed without answering), headers and body.</summary>
internal sealed record HostileAnswer(int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public bool Closed => Status == 0;

    /// <summary>The connection ended inside the body (of a chunked answer): <see cref="Body"/> is what came, still chunked.</summary>
    public bool Truncated { get; init; }

    public string Header(string name) => Headers.TryGetValue(name, out var value) ? value : "";

    public string Text => Encoding.UTF8.GetString(Body);
}

/// <summary>Sends <see cref="HostileRequest"/>s over bare sockets, one connection each (<c>Connection: close</c>).</summary>
internal static class RawClient
{
    public static async Task<HostileAnswer> SendAsync(Uri server, HostileRequest request, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(server.Host, server.Port, cancel.Token);
        var stream = client.GetStream();
        var head = new StringBuilder();
        head.Append(request.RequestLine ?? $"{request.Method} {request.Target} HTTP/1.1").Append("\r\n");
        if (!request.OmitHost)
        {
            head.Append("Host: ").Append(server.Authority).Append("\r\n");
        }
        head.Append("Connection: close\r\n");
        if (request.ContentType is not null)
        {
            head.Append("Content-Type: ").Append(request.ContentType).Append("\r\n");
        }
        if (request.AnnouncedLength is not null)
        {
            head.Append("Content-Length: ").Append(request.AnnouncedLength).Append("\r\n");
        }
        else if (!request.OmitLength && (request.Body is not null || request.Method is "POST" or "PUT" or "PATCH"))
        {
            head.Append("Content-Length: ").Append((request.Body?.Length ?? 0).ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }
        if (Exceptions.SpeaksJsonRpc(request.Target) && !request.Headers.Any(h => h.Name.Equals("Accept", StringComparison.OrdinalIgnoreCase)))
        {
            // The Streamable HTTP transport answers 406 to a POST that does not accept both; with it, probes reach the JSON-RPC parser.
            head.Append("Accept: application/json, text/event-stream\r\n");
        }
        foreach (var (name, value) in request.Headers)
        {
            head.Append(name).Append(value is null ? "" : ": " + value).Append("\r\n");
        }
        head.Append("\r\n");
        try
        {
            // Latin-1: a header given as a string of chars U+0000..U+00FF goes out as those exact bytes.
            await stream.WriteAsync(Encoding.Latin1.GetBytes(head.ToString()), cancel.Token);
            if (request.Body is { Length: > 0 } body)
            {
                await stream.WriteAsync(body, cancel.Token);
            }
            if (request.HalfClose)
            {
                client.Client.Shutdown(SocketShutdown.Send);
            }
        }
        catch (IOException)
        {
            // The server may answer and close before a large body is written; read what it said.
        }
        return await ReadAnswerAsync(stream, request.Method == "HEAD", cancel.Token);
    }

    /// <summary>Reads one response: head, then a body by Content-Length, chunks or to the end of the connection.</summary>
    public static async Task<HostileAnswer> ReadAnswerAsync(NetworkStream stream, bool head, CancellationToken ct)
    {
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int headerEnd = -1;
        Dictionary<string, string> headers = new(StringComparer.OrdinalIgnoreCase);
        var status = 0;
        while (true)
        {
            if (headerEnd < 0 && (headerEnd = received.ToArray().AsSpan().IndexOf("\r\n\r\n"u8)) >= 0 && Interim(received, headerEnd))
            {
                // A 100 Continue before the answer: drop it and read on.
                var rest = received.ToArray()[(headerEnd + 4)..];
                received = new MemoryStream();
                received.Write(rest);
                headerEnd = -1;
                continue;
            }
            if (headerEnd >= 0 && status == 0)
            {
                var lines = Encoding.Latin1.GetString(received.ToArray(), 0, headerEnd).Split("\r\n");
                status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
                foreach (var line in lines.Skip(1))
                {
                    var colon = line.IndexOf(':');
                    if (colon > 0)
                    {
                        var name = line[..colon].Trim();
                        headers[name] = headers.TryGetValue(name, out var earlier) ? earlier + ", " + line[(colon + 1)..].Trim() : line[(colon + 1)..].Trim();
                    }
                }
            }
            if (headerEnd >= 0 && Complete(received.ToArray().AsSpan(headerEnd + 4), headers, head, status))
            {
                break;
            }
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, ct);
            }
            catch (IOException)
            {
                read = 0;
            }
            if (read == 0)
            {
                break;
            }
            received.Write(buffer, 0, read);
        }
        if (headerEnd < 0)
        {
            return new HostileAnswer(0, headers, []);
        }
        var body = received.ToArray()[(headerEnd + 4)..];
        if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            if (Dechunk(body) is not { } whole)
            {
                return new HostileAnswer(status, headers, body) { Truncated = true };
            }
            body = whole;
        }
        return new HostileAnswer(status, headers, head ? [] : body);
    }

    private static bool Interim(MemoryStream received, int headerEnd) =>
        Encoding.Latin1.GetString(received.ToArray(), 0, headerEnd) is var head && head.StartsWith("HTTP/1.1 1", StringComparison.Ordinal);

    private static bool Complete(ReadOnlySpan<byte> body, Dictionary<string, string> headers, bool head, int status)
    {
        if (head || status is 204 or 304 || status < 200)
        {
            return true;
        }
        if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            return body.EndsWith("0\r\n\r\n"u8);
        }
        return headers.TryGetValue("Content-Length", out var length) && long.TryParse(length, CultureInfo.InvariantCulture, out var n) && body.Length >= n;
    }

    /// <summary>The chunks' data, or null when the body ends inside a chunk (the connection closed first).</summary>
    private static byte[]? Dechunk(byte[] body)
    {
        var result = new MemoryStream();
        var position = 0;
        while (position < body.Length)
        {
            var lineEnd = body.AsSpan(position).IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                break;
            }
            var size = Convert.ToInt32(Encoding.ASCII.GetString(body, position, lineEnd).Split(';')[0], 16);
            if (size == 0)
            {
                return result.ToArray();
            }
            if (position + lineEnd + 2 + size > body.Length)
            {
                return null;
            }
            result.Write(body, position + lineEnd + 2, size);
            position += lineEnd + 2 + size + 2;
        }
        return null; // no last chunk
    }
}
