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
                if (context.MatchedPrimitive is McpServerTool checkedTool)
                {
                    McpArgumentCheck.Check(checkedTool.ProtocolTool, context.Params?.Arguments,
                        strict: checkedTool.Metadata.OfType<StrictArgumentsAttribute>().Any());
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

    /// <summary>
    /// A binding error in the REST wording, adapted: arguments arrive as parsed JSON, so nothing is ever
    /// "malformed JSON" (a converter's own message such as "tier must be one of …" is all there is),
    /// and there is no body; a scope field written inside filters is pointed to the top level.
    /// </summary>
    private static string DescribeJson(JsonException exception)
    {
        var detail = JsonErrors.Describe(exception, out var field);
        const string Malformed = "malformed JSON: ";
        if (detail.StartsWith(Malformed, StringComparison.Ordinal))
        {
            detail = detail[Malformed.Length..];
            var position = detail.LastIndexOf(" (line ", StringComparison.Ordinal);
            detail = position > 0 ? detail[..position] : detail;
        }
        if (detail == "the body must be a JSON object")
        {
            detail = "an argument has the wrong type; see the tool's input schema";
        }
        if (detail.StartsWith("unknown field", StringComparison.Ordinal) && field is "user_id" or "agent_id" or "session_id" or "namespace")
        {
            detail += $"; {field} is a top-level argument of every memory tool, not a filter";
        }
        return detail;
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
        Core.Operations.WritesRefusedException w => "unavailable: " + w.Message,
        NotFoundException n => "not found: " + n.Message,
        ForbiddenException f => "forbidden: " + f.Message,
        ConflictException c => "conflict: " + c.Message + (c.ExistingId is null ? "" : $" (existing id {c.ExistingId})"),
        PreconditionFailedException p => $"version mismatch: {p.Message} (current version {p.CurrentVersion})",
        JsonException j => "invalid arguments: " + DescribeJson(j),
        McpException m => m.Message,
        ArgumentException a => "invalid arguments: " + a.Message,
        _ => null,
    };
}
