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
    /// <summary>The runtime's setting for how many socket event threads the process runs (read once, at its first socket).</summary>
    public const string EventThreadsVariable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    /// <summary>
    /// One socket event thread per core unless the operator chose a count: with commands running on the event threads, a
    /// single thread would cap the endpoint at one core (the runtime makes the same choice when inline completions are
    /// switched on for the whole process). Only how sockets are spread over event threads changes; HTTP sockets still
    /// dispatch to the pool. It takes effect only when no socket was used in the process yet, as when <c>engram serve</c>
    /// starts (a server hosted in a process that already used sockets keeps its count).
    /// </summary>
    public static void UseEventThreadPerCore()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(EventThreadsVariable)))
        {
            Environment.SetEnvironmentVariable(EventThreadsVariable, Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

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
