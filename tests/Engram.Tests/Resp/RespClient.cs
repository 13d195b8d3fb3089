using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Engram.Tests.Resp;

/// <summary>
/// A bare RESP client over a socket for the protocol tests: sends commands (or raw bytes) and reads replies
/// as .NET values: simple strings as "+OK", errors as "-ERR …", integers as long, bulk strings as string,
/// nulls as null, arrays as object?[] (RESP3 maps as object?[] of alternating keys and values).
/// </summary>
public sealed class RespClient : IDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly BufferedStream _input;

    private RespClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _input = new BufferedStream(_stream, 65536);
    }

    public static async Task<RespClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true, ReceiveTimeout = 30_000 };
        await tcp.ConnectAsync("127.0.0.1", port);
        return new RespClient(tcp);
    }

    public static byte[] Encode(params string[] args)
    {
        var text = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (var arg in args)
        {
            text.Append('$').Append(Encoding.UTF8.GetByteCount(arg)).Append("\r\n").Append(arg).Append("\r\n");
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public async Task<object?> CallAsync(params string[] args)
    {
        await SendRawAsync(Encode(args));
        return Read();
    }

    /// <summary>Reads one reply (blocking, with the socket's receive time-out).</summary>
    public object? Read()
    {
        var line = ReadLine() ?? throw new EndOfStreamException("the server closed the connection");
        var body = line[1..];
        switch (line[0])
        {
            case '+':
                return line;
            case '-':
                return line;
            case ':':
                return long.Parse(body, CultureInfo.InvariantCulture);
            case '_':
                return null;
            case '$':
                var length = int.Parse(body, CultureInfo.InvariantCulture);
                if (length < 0)
                {
                    return null;
                }
                var bytes = new byte[length + 2];
                _input.ReadExactly(bytes);
                return Encoding.UTF8.GetString(bytes, 0, length);
            case '*' or '%':
                var count = int.Parse(body, CultureInfo.InvariantCulture);
                if (count < 0)
                {
                    return null;
                }
                var items = new object?[line[0] == '%' ? count * 2 : count];
                for (var i = 0; i < items.Length; i++)
                {
                    items[i] = Read();
                }
                return items;
            default:
                throw new InvalidDataException("unexpected reply: " + line);
        }
    }

    /// <summary>True when the server closed the connection (a read returns no bytes) within the socket's time-out.</summary>
    public bool IsClosedByServer()
    {
        try
        {
            return _input.ReadByte() < 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private string? ReadLine()
    {
        var line = new StringBuilder();
        while (true)
        {
            var b = _input.ReadByte();
            if (b < 0)
            {
                return line.Length == 0 ? null : throw new EndOfStreamException("the connection ended inside a reply");
            }
            if (b == '\r')
            {
                _input.ReadByte();
                return line.ToString();
            }
            line.Append((char)b);
        }
    }

    public void Dispose()
    {
        _input.Dispose();
        _tcp.Dispose();
    }
}
