using Engram.Core.Common;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Mcp;

/// <summary>
/// Who is calling an MCP tool. Over HTTP it is the request's caller as the authentication gate set it
/// (the same key, tenant, role and scope as REST); over stdio it is the identity the process was started
/// with. Tools never take a tenant or a scope from their arguments.
/// </summary>
public interface IMcpCallerSource
{
    Caller Current { get; }
}

/// <summary>The caller of the HTTP request that carries the MCP message (stateless mode: one request, one message).</summary>
internal sealed class HttpMcpCallerSource(IHttpContextAccessor accessor) : IMcpCallerSource
{
    public Caller Current => accessor.HttpContext?.GetCaller()
        ?? throw new InvalidOperationException("an MCP tool ran outside an HTTP request");
}

/// <summary>A fixed caller: the stdio transport, where the person who starts the process owns the data folder.</summary>
public sealed class FixedMcpCallerSource(Caller caller) : IMcpCallerSource
{
    public Caller Current { get; } = caller;
}
