using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text;
using Engram.Core.KeyValue;

namespace Engram.Server.Resp;

/// <summary>
/// Writes RESP2/RESP3 replies straight into the connection's pipe (nothing is sent until the connection
/// flushes, once per batch of pipelined commands). <see cref="Resp3"/> switches nulls and maps to their
/// RESP3 forms after <c>HELLO 3</c>.
/// </summary>
internal sealed class RespWriter(PipeWriter output)
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>
    /// Where escaped values are resolved, made at the first one (a connection's writer keeps it): the writers made for each
    /// script and each command a script runs mostly never need it, and 8 KB each was most of what a script allocated.
    /// </summary>
    private char[]? _chars;

    private const int CharsKept = 4096;

    public bool Resp3 { get; set; }

    /// <summary>Where error replies are counted by kind (the connection's metrics).</summary>
    public RespTally? Tally { get; set; }

    public void Raw(ReadOnlySpan<byte> bytes)
    {
        var span = output.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        output.Advance(bytes.Length);
    }

    public void Ok() => Raw("+OK\r\n"u8);

    public void Simple(string text)
    {
        var span = output.GetSpan(text.Length * 3 + 3);
        span[0] = (byte)'+';
        var n = Encoding.UTF8.GetBytes(Clean(text), span[1..]);
        span[n + 1] = (byte)'\r';
        span[n + 2] = (byte)'\n';
        output.Advance(n + 3);
    }

    /// <summary>An array of simple strings: what the HELP subcommands answer.</summary>
    public void Lines(IReadOnlyList<string> lines)
    {
        Array(lines.Count);
        foreach (var line in lines)
        {
            Simple(line);
        }
    }

    /// <summary>An error reply; <paramref name="text"/> starts with its code (ERR, WRONGPASS, NOAUTH, …) and holds no line breaks.</summary>
    public void Error(string text)
    {
        Tally?.Error(text);
        var span = output.GetSpan(text.Length * 3 + 3);
        span[0] = (byte)'-';
        var n = Encoding.UTF8.GetBytes(Clean(text), span[1..]);
        span[n + 1] = (byte)'\r';
        span[n + 2] = (byte)'\n';
        output.Advance(n + 3);
    }

    public void Integer(long value) => Header((byte)':', value);

    public void Null() => Raw(Resp3 ? "_\r\n"u8 : "$-1\r\n"u8);

    public void Array(int count) => Header((byte)'*', count);

    /// <summary>A map of <paramref name="pairs"/> entries (RESP3), or a flat array of twice as many (RESP2).</summary>
    public void Map(int pairs)
    {
        if (Resp3)
        {
            Header((byte)'%', pairs);
        }
        else
        {
            Header((byte)'*', pairs * 2L);
        }
    }

    public void Bulk(ReadOnlySpan<byte> value)
    {
        var span = output.GetSpan(value.Length + 16);
        span[0] = (byte)'$';
        Utf8Formatter.TryFormat(value.Length, span[1..], out var n);
        n++;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        value.CopyTo(span[n..]);
        n += value.Length;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        output.Advance(n);
    }

    /// <summary>A bulk string of <paramref name="value"/>'s UTF-8 bytes.</summary>
    public void Bulk(ReadOnlySpan<char> value)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        var span = output.GetSpan(bytes + 16);
        span[0] = (byte)'$';
        Utf8Formatter.TryFormat(bytes, span[1..], out var n);
        n++;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        n += Encoding.UTF8.GetBytes(value, span[n..]);
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        output.Advance(n);
    }

    public void Bulk(string value) => Bulk(value.AsSpan());

    /// <summary>
    /// The value of a stored entry as RESP bytes: a JSON string's text, a <c>{"$bytes":"&lt;base64&gt;"}</c> value its
    /// bytes, any other JSON its text (<see cref="RespValues"/>).
    /// </summary>
    public void Value(string valueJson)
    {
        if (RespValues.TryStringContent(valueJson, out var content))
        {
            Bulk(content);
            return;
        }
        if (valueJson.Length > 0 && valueJson[0] == '"')
        {
            // Escapes (redis-benchmark's values hold backslashes): resolved into the connection's buffer (kept for values
            // up to 4 KB, not cleared per use as a stackalloc would be), no JSON document.
            char[]? rented = null;
            var buffer = valueJson.Length <= CharsKept ? _chars ??= GC.AllocateUninitializedArray<char>(CharsKept)
                : (rented = ArrayPool<char>.Shared.Rent(valueJson.Length));
            try
            {
                if (RespValues.TryUnescape(valueJson, buffer, out var written))
                {
                    Bulk(buffer.AsSpan(0, written));
                    return;
                }
            }
            finally
            {
                if (rented is not null)
                {
                    ArrayPool<char>.Shared.Return(rented);
                }
            }
        }
        if (RespValues.TryBytes(valueJson) is { } bytes)
        {
            Bulk(bytes);
            return;
        }
        Bulk(RespValues.DecodeJsonString(valueJson));
    }

    /// <summary>
    /// The longest value (in JSON characters) whose reply bytes an entry keeps (<see cref="KvEntry.GetDerived{T}"/>): a
    /// key read again is then one copy, not an unescape and a transcoding per read. Longer values are converted per read,
    /// so the cache adds at most this much to an entry held in memory.
    /// </summary>
    internal const int MaxKeptReplyChars = 4096;

    /// <summary><see cref="Value(string)"/> for an entry, from the reply bytes it keeps when the value is short.</summary>
    public void Value(KvEntry entry)
    {
        if (entry.ValueJson.Length <= MaxKeptReplyChars)
        {
            Raw(entry.GetDerived(static valueJson => BulkReply(valueJson)));
            return;
        }
        Value(entry.ValueJson);
    }

    /// <summary>The whole bulk reply (header, bytes, CRLF) <see cref="Value(string)"/> writes for <paramref name="valueJson"/>.</summary>
    internal static byte[] BulkReply(string valueJson)
    {
        if (RespValues.TryStringContent(valueJson, out var content))
        {
            return Framed(content);
        }
        if (valueJson.Length > 0 && valueJson[0] == '"')
        {
            var rented = ArrayPool<char>.Shared.Rent(valueJson.Length);
            try
            {
                if (RespValues.TryUnescape(valueJson, rented, out var written))
                {
                    return Framed(rented.AsSpan(0, written));
                }
            }
            finally
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
        return RespValues.TryBytes(valueJson) is { } bytes ? Framed(bytes) : Framed(RespValues.DecodeJsonString(valueJson));
    }

    private static byte[] Framed(ReadOnlySpan<char> text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        var reply = FrameOf(length, out var at);
        Encoding.UTF8.GetBytes(text, reply.AsSpan(at));
        return reply;
    }

    private static byte[] Framed(ReadOnlySpan<byte> bytes)
    {
        var reply = FrameOf(bytes.Length, out var at);
        bytes.CopyTo(reply.AsSpan(at));
        return reply;
    }

    /// <summary>An array for a bulk reply of <paramref name="length"/> bytes with its header and CRLF written; the bytes go at <paramref name="at"/>.</summary>
    private static byte[] FrameOf(int length, out int at)
    {
        Span<byte> header = stackalloc byte[16];
        header[0] = (byte)'$';
        Utf8Formatter.TryFormat(length, header[1..], out var digits);
        at = digits + 3;
        var reply = new byte[at + length + 2];
        header[..(digits + 1)].CopyTo(reply);
        reply[digits + 1] = (byte)'\r';
        reply[digits + 2] = (byte)'\n';
        reply[^2] = (byte)'\r';
        reply[^1] = (byte)'\n';
        return reply;
    }

    /// <summary>How many bytes <see cref="Value"/> writes for <paramref name="valueJson"/> (STRLEN): the reply less its header and CRLF.</summary>
    public static int ValueLength(string valueJson)
    {
        var reply = BulkReply(valueJson);
        return reply.Length - reply.AsSpan().IndexOf((byte)'\n') - 3;
    }

    private void Header(byte kind, long value)
    {
        var span = output.GetSpan(24);
        span[0] = kind;
        Utf8Formatter.TryFormat(value, span[1..], out var n);
        n++;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        output.Advance(n);
    }

    private static string Clean(string text) => text.Contains('\n') || text.Contains('\r') ? text.Replace('\r', ' ').Replace('\n', ' ') : text;

    internal static bool IsUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    internal static string? TryDecode(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }
}
