using System.Reflection;
using Engram.Server.Mcp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Engram.Cli.Mcp;

/// <summary>
/// <c>engram mcp --server URL</c>: an MCP server on stdio that forwards every request to a running Engram's
/// <c>/mcp</c>. It holds no store and no index. It answers <c>initialize</c> itself, so a client starts even
/// while the server is down; then a tool call answers with a tool error that says why (unreachable, bad
/// key), a listing with a protocol error carrying the same message, and the link is retried on the next
/// request. Results and errors of the server pass through unchanged.
/// </summary>
internal static class McpProxy
{
    /// <summary>Engram's version, as the server reports it (one version for the whole build).</summary>
    public static readonly string Version =
        typeof(McpProxy).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static IHost Build(UpstreamMcp upstream)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // A failed forward is already one "engram: ..." line on stderr; the SDK's warning with a stack trace adds nothing.
        builder.Logging.AddFilter("ModelContextProtocol", LogLevel.Error);
        builder.Services.AddMcpServer(options =>
            {
                options.ServerInfo = new Implementation { Name = "engram", Title = "Engram memory", Version = Version };
                options.ServerInstructions = EngramMcp.Instructions;
            })
            .WithStreamServerTransport(StdioLines.Stdin.Input, StdioLines.Stdin.Output)
            .WithMessageFilters(filters => filters.AddIncomingFilter(McpMessageChecks.Filter)) // what the server would refuse, refused here as it would
            .WithListToolsHandler((context, ct) => ForwardAsync(upstream, (c, t) => c.ListToolsAsync(context.Params ?? new(), t), ct))
            .WithCallToolHandler(async (context, ct) =>
            {
                try
                {
                    return await upstream.SendAsync((c, t) => c.CallToolAsync(context.Params!, t), ct);
                }
                catch (UpstreamUnavailableException ex)
                {
                    // The model sees why the tool failed and can tell the person; the session stays up.
                    return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = ex.Message }] };
                }
            })
            .WithListResourcesHandler((context, ct) => ForwardAsync(upstream, async (c, t) =>
                c.ServerCapabilities.Resources is null ? new ListResourcesResult() : await c.ListResourcesAsync(context.Params ?? new(), t), ct))
            .WithListResourceTemplatesHandler((context, ct) => ForwardAsync(upstream, async (c, t) =>
                c.ServerCapabilities.Resources is null ? new ListResourceTemplatesResult() : await c.ListResourceTemplatesAsync(context.Params ?? new(), t), ct))
            .WithReadResourceHandler((context, ct) => ForwardAsync(upstream, (c, t) => c.ReadResourceAsync(context.Params!, t), ct))
            .WithListPromptsHandler((context, ct) => ForwardAsync(upstream, async (c, t) =>
                c.ServerCapabilities.Prompts is null ? new ListPromptsResult() : await c.ListPromptsAsync(context.Params ?? new(), t), ct))
            .WithGetPromptHandler((context, ct) => ForwardAsync(upstream, (c, t) => c.GetPromptAsync(context.Params!, t), ct));
        return builder.Build();
    }

    /// <summary>A request that has no tool-error form (listings, reads, prompts): a link failure is a protocol error with the message.</summary>
    private static async ValueTask<T> ForwardAsync<T>(UpstreamMcp upstream, Func<ModelContextProtocol.Client.McpClient, CancellationToken, ValueTask<T>> request,
        CancellationToken ct)
    {
        try
        {
            return await upstream.SendAsync(request, ct);
        }
        catch (UpstreamUnavailableException ex)
        {
            throw new McpProtocolException(ex.Message, McpErrorCode.InternalError);
        }
    }
}
