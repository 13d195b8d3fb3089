using System.ComponentModel;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// The memory tools. Each calls <see cref="MemoryService"/> or <see cref="Core.Search.SearchService"/> as
/// the REST endpoint for the same work does; argument names are the REST field names, and the scope
/// fields (user_id, agent_id, session_id, namespace) are top-level arguments, as in mem0's tools.
/// </summary>
[McpServerToolType]
internal sealed class MemoryTools(MemoryService memories, IMcpCallerSource callers)
{
    [McpServerTool(Name = "memory_store", Title = "Remember", ReadOnly = false, Destructive = false, Idempotent = false, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(WrittenMemory))]
    [Description("Store one memory (a fact, preference, decision or event) so it can be found later. Returns the stored memory; " +
        "duplicate=true when the same content already exists in the same scope (then the existing memory is returned).")]
    public async Task<CallToolResult> StoreAsync(
        [Description("The text to remember; one self-contained fact reads best.")] string content,
        [Description("Kind of memory, e.g. fact, preference, decision, event (default fact).")] string? type = null,
        [Description("working (one task), short_term (one session) or long_term (default).")] MemoryTier? tier = null,
        [Description("0..1, how much this matters when ranking (default 0.5).")] double? importance = null,
        [Description("Free-form labels.")] IReadOnlyList<string>? tags = null,
        [Description("Names of people, projects or things the memory mentions; links it to graph entities of those names.")] IReadOnlyList<string>? entities = null,
        [Description("Any JSON object to keep with the memory; filterable in memory_search and memory_list.")] JsonElement? metadata = null,
        [Description("Scope: the user the memory is about.")] string? user_id = null,
        [Description("Scope: the agent that owns it.")] string? agent_id = null,
        [Description("Scope: the conversation or run it belongs to.")] string? session_id = null,
        [Description("Scope: a free namespace such as a project name.")] string? @namespace = null,
        [Description("Where it came from (a URL, a file, a tool).")] string? source = null,
        [Description("Forget it after this many seconds.")] long? ttl_seconds = null,
        [Description("return (default: answer with the existing memory), reject (an error naming it) or allow (store again).")] string? on_duplicate = null,
        CancellationToken ct = default)
    {
        var request = new NewMemory
        {
            Content = content,
            Type = type,
            Tier = tier,
            Importance = importance,
            Tags = tags,
            Entities = entities,
            Metadata = metadata,
            UserId = user_id,
            AgentId = agent_id,
            SessionId = session_id,
            Namespace = @namespace,
            Source = source,
            TtlSeconds = ttl_seconds,
        };
        var result = await memories.CreateAsync(callers.Current, request, McpArguments.OnDuplicate(on_duplicate), ct);
        return McpResults.Ok(new WrittenMemory(result));
    }

    [McpServerTool(Name = "memory_get", Title = "Get a memory", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(Memory))]
    [Description("Read one memory by id.")]
    public async Task<CallToolResult> GetAsync(
        [Description("The memory's id (from memory_store, memory_search or memory_list).")] string id,
        CancellationToken ct = default)
    {
        return McpResults.Ok(await memories.GetAsync(callers.Current, id, ct));
    }
}
