using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Cli.Mcp;

/// <summary>
/// Tells when the MCP handshake is over, so slow work can start without delaying it: the first message
/// from the client that is neither <c>initialize</c> nor <c>server/discover</c> (the
/// <c>notifications/initialized</c> that follows the handshake, or the first request of a client of the
/// 2026-07-28 revision, which has no handshake).
/// </summary>
internal sealed class HandshakeSignal
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Completed => _done.Task;

    /// <summary>An incoming-message filter that sets the signal and passes every message on.</summary>
    public McpMessageFilter Filter => next => (context, ct) =>
    {
        if (!_done.Task.IsCompleted && context.JsonRpcMessage is not JsonRpcRequest { Method: RequestMethods.Initialize or "server/discover" })
        {
            _done.TrySetResult();
        }
        return next(context, ct);
    };
}
