using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Engram.Tests.Hostile;

/// <summary>
/// HTTP/1.1 over a bare socket, for what HttpClient will not do on request: announce a body and not
/// send it, or keep streaming chunks and stop as soon as the server answers (so the answer is read
/// before the server closes on the unread rest).
/// </summary>
internal static class RawHttp
{
    public sealed record Answer(int Status, string ContentType, string Body)
    {
        public JsonElement Json => JsonDocument.Parse(Body).RootElement.Clone();
    }

    /// <summary>Sends the request line and headers only (with <paramref name="contentLength"/>), then reads the answer.</summary>
    public static async Task<Answer> HeadersOnlyAsync(Uri server, string method, string path, long contentLength, TimeSpan timeout)
    {
        using var client = await ConnectAsync(server);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"{method} {path} HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Type: application/json\r\nContent-Length: {contentLength}\r\n\r\n"));
        return await ReadAnswerAsync(stream, timeout);
    }

    /// <summary>Sends <paramref name="rawTarget"/> exactly as given (no re-encoding) with a JSON body.</summary>
    public static async Task<Answer> RequestAsync(Uri server, string method, string rawTarget, string json, TimeSpan timeout)
    {
        using var client = await ConnectAsync(server);
        var stream = client.GetStream();
        var body = Encoding.UTF8.GetBytes(json);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"{method} {rawTarget} HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"));
        await stream.WriteAsync(body);
        return await ReadAnswerAsync(stream, timeout);
    }

    /// <summary>
    /// Sends <paramref name="method"/> <paramref name="path"/> with a JSON Content-Type, <paramref name="headers"/> (each
    /// ending in CRLF) and <paramref name="body"/> exactly as given, framing and all (in UTF-8, as a client that sends
    /// header values beyond ASCII does); then reads the answer.
    /// </summary>
    public static async Task<Answer> RawAsync(Uri server, string method, string path, string headers, string body, TimeSpan timeout)
    {
        using var client = await ConnectAsync(server);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(
            $"{method} {path} HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{headers}\r\n{body}"));
        return await ReadAnswerAsync(stream, timeout);
    }

    /// <summary>Streams a chunked body of <paramref name="totalBytes"/> (a JSON object with one long string) and stops once the server answers.</summary>
    public static async Task<Answer> ChunkedAsync(Uri server, string method, string path, long totalBytes, TimeSpan timeout, string extraHeaders = "")
    {
        using var client = await ConnectAsync(server);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"{method} {path} HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{extraHeaders}\r\n"));
        var head = Encoding.ASCII.GetBytes("{\"content\":\"");
        var chunk = Encoding.ASCII.GetBytes(new string('a', 8192));
        try
        {
            await WriteChunkAsync(stream, head);
            long sent = head.Length;
            while (sent < totalBytes && client.Available == 0)
            {
                await WriteChunkAsync(stream, chunk);
                sent += chunk.Length;
                await Task.Yield();
            }
            if (client.Available == 0)
            {
                await WriteChunkAsync(stream, Encoding.ASCII.GetBytes("\"}"));
                await stream.WriteAsync(Encoding.ASCII.GetBytes("0\r\n\r\n"));
            }
        }
        catch (IOException)
        {
            // The server answered and closed between the check for an answer and a write (broken pipe): read the answer.
        }
        return await ReadAnswerAsync(stream, timeout);
    }

    private static async Task<TcpClient> ConnectAsync(Uri server)
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(server.Host, server.Port);
        return client;
    }

    private static async Task WriteChunkAsync(NetworkStream stream, byte[] data)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{data.Length:X}\r\n"));
        await stream.WriteAsync(data);
        await stream.WriteAsync("\r\n"u8.ToArray());
    }

    /// <summary>Reads status, headers and body (Content-Length or chunked) of one answer.</summary>
    private static async Task<Answer> ReadAnswerAsync(NetworkStream stream, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var received = new List<byte>();
        var buffer = new byte[16 * 1024];
        int headerEnd;
        while ((headerEnd = IndexOf(received, "\r\n\r\n"u8)) < 0)
        {
            var read = await stream.ReadAsync(buffer, cancel.Token);
            if (read == 0)
            {
                throw new IOException("the server closed the connection without an answer");
            }
            received.AddRange(buffer.AsSpan(0, read));
        }
        var headers = Encoding.ASCII.GetString([.. received.Take(headerEnd)]).Split("\r\n");
        var status = int.Parse(headers[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        string Header(string name) => headers.Skip(1).Select(h => h.Split(':', 2)).Where(p => p[0].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
            .Select(p => p[1].Trim()).FirstOrDefault() ?? "";
        var body = received.Skip(headerEnd + 4).ToList();
        var chunked = Header("Transfer-Encoding").Contains("chunked", StringComparison.OrdinalIgnoreCase);
        var length = chunked ? -1 : int.Parse(Header("Content-Length") is { Length: > 0 } l ? l : "0", System.Globalization.CultureInfo.InvariantCulture);
        while (chunked ? IndexOf(body, "0\r\n\r\n"u8) < 0 : body.Count < length)
        {
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, cancel.Token);
            }
            catch (IOException)
            {
                break;
            }
            if (read == 0)
            {
                break;
            }
            body.AddRange(buffer.AsSpan(0, read));
        }
        var text = chunked ? Dechunk([.. body]) : Encoding.UTF8.GetString([.. body]);
        return new Answer(status, Header("Content-Type"), text);
    }

    private static string Dechunk(byte[] body)
    {
        var result = new StringBuilder();
        var position = 0;
        while (position < body.Length)
        {
            var lineEnd = Array.IndexOf(body, (byte)'\r', position);
            if (lineEnd < 0)
            {
                break;
            }
            var size = Convert.ToInt32(Encoding.ASCII.GetString(body, position, lineEnd - position).Split(';')[0], 16);
            if (size == 0)
            {
                break;
            }
            result.Append(Encoding.UTF8.GetString(body, lineEnd + 2, size));
            position = lineEnd + 2 + size + 2;
        }
        return result.ToString();
    }

    private static int IndexOf(List<byte> data, ReadOnlySpan<byte> pattern) =>
        System.Runtime.InteropServices.CollectionsMarshal.AsSpan(data).IndexOf(pattern);
}
