using System.ComponentModel;
using System.Text.Json;
using Engram.Core.KeyValue;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// The key-value tools: scratch state with TTLs (counters, flags, small JSON documents), each calling
/// <see cref="KvService"/> as the <c>/v1/kv</c> endpoint for the same work does; argument names are the
/// REST field names. A scoped key works in a namespace of its own, as over REST.
/// </summary>
[McpServerToolType, StrictArguments]
internal sealed class KeyValueTools(KvService kv, IMcpCallerSource callers)
{
    private const string KeyHelp = "The key, e.g. \"session:42:step\" (':' and '/' are fine).";

    [McpServerTool(Name = "kv_set", Title = "Set a key", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(KvWritten))]
    [Description("Set a key to any JSON value (string, number, boolean, null, array or object), replacing what it held. " +
        "nx=true sets it only if missing, xx=true only if present (otherwise a conflict error). Returns created, version and expiry.")]
    public async Task<CallToolResult> SetAsync(
        [Description(KeyHelp)] string key,
        [Description("The value: any JSON.")] JsonElement value,
        [Description("Expire after this many seconds; 0 = never (default: the server's default TTL).")] long? ttl_seconds = null,
        [Description("true: set only if the key does not exist.")] bool? nx = null,
        [Description("true: set only if the key already exists.")] bool? xx = null,
        CancellationToken ct = default)
    {
        return McpResults.Ok(await kv.SetAsync(callers.Current, key, value, ttl_seconds, nx ?? false, xx ?? false, ct));
    }

    [McpServerTool(Name = "kv_get", Title = "Get a key", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(KvItem))]
    [Description("Read a key: its value, seconds to live (0: no expiry) and expiry time. A missing or expired key is an error.")]
    public async Task<CallToolResult> GetAsync([Description(KeyHelp)] string key, CancellationToken ct = default)
    {
        return McpResults.Ok(await kv.GetAsync(callers.Current, key, ct));
    }

    [McpServerTool(Name = "kv_delete", Title = "Delete a key", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(DeletedKey))]
    [Description("Delete one key. A missing key is an error.")]
    public async Task<CallToolResult> DeleteAsync([Description(KeyHelp)] string key, CancellationToken ct = default)
    {
        await kv.DeleteAsync(callers.Current, key, ct);
        return McpResults.Ok(new DeletedKey(key, true));
    }

    [McpServerTool(Name = "kv_list", Title = "List keys", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(KvPage))]
    [Description("List keys (not values: read them with kv_get) in key order, with their TTL and version. " +
        "When next_cursor is not null, call again with cursor = next_cursor for the next page.")]
    public async Task<CallToolResult> ListAsync(
        [Description("Redis-style glob: * any run, ? one character, [abc] one of; default all keys.")] string? pattern = null,
        [Description("next_cursor of the previous page, to continue after it.")] string? cursor = null,
        [Description("Keys per page (1..1000, default 100).")] int? limit = null,
        CancellationToken ct = default)
    {
        return McpResults.Ok(await kv.ListAsync(callers.Current, pattern, limit, cursor, ct));
    }

    [McpServerTool(Name = "kv_cleanup", Title = "Delete keys by pattern", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(KvCleanupResult))]
    [Description("Delete every key matching a glob pattern. One call works for about a second: deleted counts this call's keys; " +
        "while done is false, call again with the same pattern and cursor = next_cursor.")]
    public async Task<CallToolResult> CleanupAsync(
        IServiceProvider services,
        [Description("Redis-style glob of the keys to delete, e.g. \"session:42:*\" (* any run, ? one character, [abc] one of).")] string pattern,
        [Description("next_cursor of the previous call, to continue after it.")] string? cursor = null,
        CancellationToken ct = default)
    {
        var result = await kv.CleanupStepAsync(callers.Current, pattern, cursor, ct);
        // Over HTTP a bulk delete is audited as the REST route audits it; over stdio there is no audit trail.
        if (services.GetService<IHttpContextAccessor>()?.HttpContext is { } http && http.RequestServices.GetService<AuditTrail>() is not null)
        {
            http.Audit(AuditActions.KvCleanup, pattern, $"{result.Deleted} deleted");
        }
        return McpResults.Ok(result);
    }

    [McpServerTool(Name = "kv_incr", Title = "Increment a counter", ReadOnly = false, Destructive = false, Idempotent = false, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(KvIncrResponse))]
    [Description("Add to an integer key atomically and return the new value; a missing key starts at 0. A key holding anything but an integer is a conflict error.")]
    public async Task<CallToolResult> IncrementAsync(
        [Description(KeyHelp)] string key,
        [Description("How much to add (negative to subtract; default 1).")] long? by = null,
        CancellationToken ct = default)
    {
        return McpResults.Ok(new KvIncrResponse(key, await kv.IncrementAsync(callers.Current, key, by ?? 1, ct)));
    }
}

/// <summary>The answer of kv_delete.</summary>
public sealed record DeletedKey(string Key, bool Deleted);
