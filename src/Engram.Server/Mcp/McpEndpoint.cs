using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Mcp;

/// <summary>
/// <c>/mcp</c>: the Streamable HTTP transport, stateless (every POST carries its own caller and no
/// session lives in this process, so many instances can serve one store). Reading needs the read role;
/// tools that write check the write role per call (<see cref="McpToolFailures"/>). A request from a
/// browser page of a foreign origin is refused with 403 before the gate, as the MCP spec requires
/// against DNS rebinding (<see cref="OriginPolicy.AcceptsRequest"/>).
/// </summary>
internal static class McpEndpoint
{
    public const string Path = "/mcp";

    public static IEndpointConventionBuilder MapEngramMcp(this IEndpointRouteBuilder app) =>
        app.MapMcp(Path).Requires(Role.Read).WithMetadata(OriginChecked.Instance).WithTags("mcp");

    /// <summary>Refuses a foreign <c>Origin</c> on endpoints marked <see cref="OriginChecked"/>; runs after routing, before the gate.</summary>
    public static IApplicationBuilder UseMcpOriginCheck(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<OriginChecked>() is not null
            && !context.RequestServices.GetRequiredService<OriginPolicy>().AcceptsRequest(context))
        {
            await Problems.For(403, "the MCP endpoint refuses requests from browser pages of other origins (the Origin header); " +
                "allow the origin with Engram:Cors:AllowedOrigins").ExecuteAsync(context);
            return;
        }
        await next(context);
    });

    private sealed class OriginChecked
    {
        public static readonly OriginChecked Instance = new();
    }
}
