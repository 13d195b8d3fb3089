using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Server.Http;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// Memories as MCP resources, for clients that let the user attach context: the recent memories of a
/// scope (a template whose query parameters are the scope fields) and the statistics. Both read through
/// <see cref="MemoryService"/> and <see cref="EngramEngine"/> with the caller's key, as the tools do.
/// </summary>
[McpServerResourceType]
internal sealed class MemoryResources(MemoryService memories, EngramEngine engine, IMcpCallerSource callers)
{
    public const string RecentUri = "memory://recent";
    public const string StatsUri = "memory://stats";
    private const int DefaultRecent = 20;

    [McpServerResource(UriTemplate = RecentUri + "{?user_id,agent_id,session_id,namespace,limit}", Name = "recent_memories",
        Title = "Recent memories", MimeType = "application/json")]
    [Description("The newest memories (default 20, at most 1000), optionally of one scope: memory://recent?user_id=ana&limit=5. " +
        "JSON: {items:[memory…], next_cursor}.")]
    public async Task<TextResourceContents> RecentAsync(
        RequestContext<ReadResourceRequestParams> context,
        [Description("Only memories of this user.")] string? user_id = null,
        [Description("Only memories of this agent.")] string? agent_id = null,
        [Description("Only memories of this conversation or run.")] string? session_id = null,
        [Description("Only memories of this namespace.")] string? @namespace = null,
        [Description("How many memories (1..1000, default 20).")] string? limit = null,
        CancellationToken ct = default)
    {
        try
        {
            var scope = McpScope.Of(user_id, agent_id, session_id, @namespace);
            var filter = new MemoryFilter { UserId = scope.UserId, AgentId = scope.AgentId, SessionId = scope.SessionId, Namespace = scope.Namespace };
            var page = await memories.ListAsync(callers.Current, filter, Limit(limit), null, ct);
            return Json(context.Params?.Uri ?? RecentUri, new MemoryListResponse(page.Items, page.NextCursor));
        }
        catch (Exception ex) when (McpToolFailures.Describe(ex) is { } message)
        {
            // A resource read has no error result: the message goes back as the request's error, as invalid params.
            throw new McpProtocolException(message, McpErrorCode.InvalidParams);
        }
    }

    [McpServerResource(UriTemplate = StatsUri, Name = "memory_stats", Title = "Memory statistics", MimeType = "application/json")]
    [Description("How many memories there are, in all and by type and tier (for an admin key also the store size and index state).")]
    public async Task<TextResourceContents> StatsAsync(CancellationToken ct = default)
    {
        try
        {
            return Json(StatsUri, await engine.GetStatsAsync(callers.Current, ct));
        }
        catch (Exception ex) when (McpToolFailures.Describe(ex) is { } message)
        {
            throw new McpProtocolException(message, McpErrorCode.InvalidParams);
        }
    }

    /// <summary>
    /// Checks the arguments of a <see cref="RecentUri"/> read as <see cref="RecentAsync"/> will (scope fields, limit; the
    /// limit's range from <paramref name="limits"/> when given), for the message checks to refuse a bad one before the
    /// SDK runs the resource: a resource's failure is logged by the SDK with its stack, twice (<see cref="McpMessageChecks"/>).
    /// </summary>
    internal static void CheckRecentArguments(string uri, Core.Configuration.MemoryLimits? limits)
    {
        var query = uri.IndexOf('?', StringComparison.Ordinal) is var at and >= 0 ? uri[(at + 1)..] : "";
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            // Strictly: Uri.UnescapeDataString keeps an escape that is not UTF-8 as text, so user_id=%ff read the memories of
            // the user literally called "%ff".
            var name = Http.RawPaths.Decode(equals < 0 ? pair : pair[..equals], "query");
            values[name] = equals < 0 ? "" : Http.RawPaths.Decode(pair[(equals + 1)..], name);
        }
        McpScope.Of(values.GetValueOrDefault("user_id"), values.GetValueOrDefault("agent_id"), values.GetValueOrDefault("session_id"),
            values.GetValueOrDefault("namespace"));
        var limit = Limit(values.GetValueOrDefault("limit")); // parsed whether or not the range is known
        limits?.CheckListLimit(limit);
    }

    private static int Limit(string? text) =>
        text is null ? DefaultRecent
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value
        : text.Length > 0 && text.AsSpan(text[0] == '-' ? 1 : 0).IndexOfAnyExceptInRange('0', '9') < 0 && text != "-"
            ? throw new ValidationException("limit", $"limit is out of range (got '{(text.Length > 20 ? text[..20] + "…" : text)}')")
            : throw new ValidationException("limit", $"limit must be a whole number (got '{(text.Length > 20 ? text[..20] + "…" : text)}')");

    private static TextResourceContents Json<T>(string uri, T value) => new()
    {
        Uri = uri,
        MimeType = "application/json",
        Text = JsonSerializer.Serialize(value, McpResults.Json),
    };
}
