using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage;
using Engram.Server.Http;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// The one call-tool filter: checks the caller's role against the tool's annotations (a tool not marked
/// read-only needs the write role, as the REST route that does the same work), and turns what a caller
/// got wrong into an MCP tool error (<c>isError: true</c> with a message the model can act on) rather
/// than a protocol error or a crashed session. Failures of the server itself are logged and reported
/// without their text, as REST does (a store message can hold SQL).
/// </summary>
internal static class McpToolFailures
{
    public static McpRequestHandler<CallToolRequestParams, CallToolResult> Filter(McpRequestHandler<CallToolRequestParams, CallToolResult> next) =>
        async (context, ct) =>
        {
            try
            {
                if (context.MatchedPrimitive is McpServerTool tool && tool.ProtocolTool.Annotations?.ReadOnlyHint != true)
                {
                    var callers = (IMcpCallerSource?)context.Services?.GetService(typeof(IMcpCallerSource));
                    callers?.Current.Require(Core.Security.Role.Write, $"call {tool.ProtocolTool.Name}");
                }
                if (context.MatchedPrimitive is McpServerTool strict && strict.Metadata.OfType<StrictArgumentsAttribute>().Any())
                {
                    RefuseUnknownArguments(strict.ProtocolTool, context.Params?.Arguments);
                }
                return await next(context, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (Describe(ex) is { } message)
            {
                return Error(message);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var logger = (ILoggerFactory?)context.Services?.GetService(typeof(ILoggerFactory));
                logger?.CreateLogger("Engram.Mcp").LogError(ex, "MCP tool {Tool} failed", context.Params?.Name);
                return Error(ex is StoreException s && StoreFailures.IsUnavailable(s)
                    ? "the store is busy or unavailable; try again later"
                    : "an unexpected error occurred; the server log has the details");
            }
        };

    /// <summary>Refuses an argument the tool's input schema does not name, listing the ones it takes.</summary>
    private static void RefuseUnknownArguments(Tool tool, IDictionary<string, JsonElement>? arguments)
    {
        if (arguments is null || arguments.Count == 0
            || !tool.InputSchema.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        foreach (var name in arguments.Keys)
        {
            if (!properties.TryGetProperty(name, out _))
            {
                var known = string.Join(", ", properties.EnumerateObject().Select(p => p.Name));
                throw new ArgumentException($"unknown argument '{name}'; {tool.Name} takes {known}");
            }
        }
    }

    /// <summary>A tool error result: the message as text content and <c>isError</c> set.</summary>
    public static CallToolResult Error(string message) => new()
    {
        IsError = true,
        Content = [new TextContentBlock { Text = message }],
    };

    /// <summary>The message for a failure the caller can fix, or null for one of the server's own.</summary>
    internal static string? Describe(Exception exception) => exception switch
    {
        ValidationException v => $"invalid {v.Field}: {v.Message}",
        NotFoundException n => "not found: " + n.Message,
        ForbiddenException f => "forbidden: " + f.Message,
        ConflictException c => "conflict: " + c.Message + (c.ExistingId is null ? "" : $" (existing id {c.ExistingId})"),
        PreconditionFailedException p => $"version mismatch: {p.Message} (current version {p.CurrentVersion})",
        JsonException j => "invalid arguments: " + JsonErrors.Describe(j, out _),
        McpException m => m.Message,
        ArgumentException a => "invalid arguments: " + a.Message,
        _ => null,
    };
}
