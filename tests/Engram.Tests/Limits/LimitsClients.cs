using System.Net;
using System.Net.Sockets;

namespace Engram.Tests.Limits;

/// <summary>Clients and bodies the limits tests need that HttpClient does not give by default.</summary>
internal static class LimitsClients
{
    /// <summary>An HTTP client whose connections come from <paramref name="localAddress"/> (any 127.x.y.z is loopback on Linux), so the server sees another client.</summary>
    public static HttpClient From(IPAddress localAddress, Uri baseAddress) =>
        new(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(localAddress, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        { BaseAddress = baseAddress };
}

/// <summary>A JSON body sent in two halves: the second only once <see cref="Release"/> is called, so the request stays in flight.</summary>
internal sealed class HeldJsonContent : HttpContent
{
    private readonly byte[] _body;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public HeldJsonContent(string json)
    {
        _body = System.Text.Encoding.UTF8.GetBytes(json);
        Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
    }

    /// <summary>Completes once the first half has been sent.</summary>
    public Task Started => _started.Task;

    public void Release() => _released.TrySetResult();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        var half = _body.Length / 2;
        await stream.WriteAsync(_body.AsMemory(0, half));
        await stream.FlushAsync();
        _started.TrySetResult();
        await _released.Task;
        await stream.WriteAsync(_body.AsMemory(half));
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _body.Length;
        return true;
    }
}
