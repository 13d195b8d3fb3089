using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Resp;

/// <summary>
/// The RESP endpoint's own socket transport, separate from Kestrel's HTTP one: its pipes run their continuations
/// inline, and each accepted socket asks the runtime to complete its I/O on the socket event thread instead of
/// queueing every completion to the thread pool (<see cref="RespOptions.InlineCompletions"/>). A request is then
/// read, run and answered on one thread with no hand-off, as Redis does. The HTTP sockets keep the runtime's
/// default; the process-wide switch (DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS) would move their continuations
/// too, and with them every Npgsql and HttpClient continuation.
/// </summary>
internal static class InlineTransport
{
    public static IConnectionListenerFactory Create(ILoggerFactory loggers) =>
        new SocketTransportFactory(Options.Create(new SocketTransportOptions { UnsafePreferInlineScheduling = true }), loggers);

    /// <summary>Marks the connection's socket for inline completions; false when the runtime offers no such switch.</summary>
    public static bool TryPreferInline(ConnectionContext context)
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is not { } socket)
        {
            return false;
        }
        try
        {
            // Internal to System.Net.Sockets (what the environment variable sets for every socket); a runtime
            // without it throws MissingMethodException, and the endpoint works as before.
            SetPreferInlineCompletions(socket, true);
            return true;
        }
        catch (MissingMethodException)
        {
            return false;
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "set_PreferInlineCompletions")]
    private static extern void SetPreferInlineCompletions(Socket socket, bool value);
}
