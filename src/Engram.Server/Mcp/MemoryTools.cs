using System.ComponentModel;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Server.Http;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// The memory tools. Each calls <see cref="MemoryService"/> or <see cref="Core.Search.SearchService"/> as
/// the REST endpoint for the same work does; argument names are the REST field names, and the scope
/// fields (user_id, agent_id, session_id, namespace) are top-level arguments, as in mem0's tools.
/// </summary>
[McpServerToolType, StrictArguments]
internal sealed class MemoryTools(MemoryService memories, SearchService search, EngramEngine engine, IMcpCallerSource callers)
{
    private const string UserIdHelp = "Scope: the user the memory is about.";
    private const string AgentIdHelp = "Scope: the agent that owns it.";
    private const string SessionIdHelp = "Scope: the conversation or run it belongs to.";
    private const string NamespaceHelp = "Scope: a free namespace such as a project name.";
    private const string FilterScopeHelp = " Only memories of this scope.";
    private const string MatchScopeHelp = " When given, it must be the memory's (else: not found).";

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
        [Description(UserIdHelp)] string? user_id = null,
        [Description(AgentIdHelp)] string? agent_id = null,
        [Description(SessionIdHelp)] string? session_id = null,
        [Description(NamespaceHelp)] string? @namespace = null,
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
        var result = await memories.CreateAsync(callers.Current, request, DuplicatePolicies.Parse(on_duplicate), ct);
        return McpResults.Ok(new WrittenMemory(result));
    }


    [McpServerTool(Name = "memory_search", Title = "Search memories", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(SearchResponse))]
    [Description("Find the memories most relevant to a question or topic (hybrid: meaning, words, recency, importance, entities), best first. " +
        "Call it before answering anything about the user, their preferences or past work.")]
    public async Task<CallToolResult> SearchAsync(
        [Description("What to look for, in natural language (e.g. \"what tea does Ana like\").")] string query,
        [Description("How many results at most (1..100, default 10).")] int? k = null,
        [Description(UserIdHelp + FilterScopeHelp)] string? user_id = null,
        [Description(AgentIdHelp + FilterScopeHelp)] string? agent_id = null,
        [Description(SessionIdHelp + FilterScopeHelp)] string? session_id = null,
        [Description(NamespaceHelp + FilterScopeHelp)] string? @namespace = null,
        [Description("More filters (type, tier, tags, tags_match, entity, source, metadata, created_after/before, updated_after/before), applied before the top-k cut.")]
        McpMemoryFilters? filters = null,
        [Description("Drop results scoring below this.")] double? min_score = null,
        [Description("Per-search weights of semantic, lexical, recency, importance and entity; missing ones take the server's defaults.")]
        McpSearchWeights? weights = null,
        [Description("Half-life in days of the recency signal (default from the server).")] double? recency_half_life_days = null,
        [Description("true adds each signal's share of the score to every result.")] bool? explain = null,
        CancellationToken ct = default)
    {
        var request = new SearchRequest
        {
            Query = query,
            K = k,
            Filters = McpMemoryFilters.ToSearchFilters(filters, McpScope.Of(user_id, agent_id, session_id, @namespace)),
            MinScore = min_score,
            Weights = weights?.ToSearchWeights(),
            RecencyHalfLifeDays = recency_half_life_days,
            Explain = explain ?? false,
        };
        var result = await search.SearchAsync(callers.Current, request, ct);
        var response = new SearchResponse([.. result.Results.Select(h => new ScoredMemory(h))], Math.Round(result.TookMs, 3));
        // As over REST: results from the in-memory indexes while the database is away say so (an agent should not take them as current).
        return McpResults.Ok(result.Stale ? response with { Stale = new StaleResults("database_unavailable", result.Unavailable) } : response);
    }

    [McpServerTool(Name = "memory_get", Title = "Get a memory", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(Memory))]
    [Description("Read one memory by id.")]
    public async Task<CallToolResult> GetAsync(
        [Description("The memory's id (from memory_store, memory_search or memory_list).")] string id,
        [Description(UserIdHelp + MatchScopeHelp)] string? user_id = null,
        [Description(AgentIdHelp + MatchScopeHelp)] string? agent_id = null,
        [Description(SessionIdHelp + MatchScopeHelp)] string? session_id = null,
        [Description(NamespaceHelp + MatchScopeHelp)] string? @namespace = null,
        CancellationToken ct = default)
    {
        return McpResults.Ok(await GetInScopeAsync(id, McpScope.Of(user_id, agent_id, session_id, @namespace), ct));
    }

    [McpServerTool(Name = "memory_update", Title = "Update a memory", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(WrittenMemory))]
    [Description("Change fields of one memory: arguments left out stay as they are, null clears a field (tier cannot be cleared). " +
        "Scope fields cannot change; they only check that the memory is in that scope. Returns the memory with its new version.")]
    public async Task<CallToolResult> UpdateAsync(
        RequestContext<CallToolRequestParams> context,
        [Description("The memory's id.")] string id,
        [Description("New text of the memory.")] string? content = null,
        [Description("New kind, e.g. fact, preference, decision, event.")] string? type = null,
        [Description("working, short_term or long_term.")] MemoryTier? tier = null,
        [Description("0..1, how much this matters when ranking.")] double? importance = null,
        [Description("-1..1, how negative or positive; null clears it.")] double? valence = null,
        [Description("Replaces all tags; null or [] clears them.")] IReadOnlyList<string>? tags = null,
        [Description("Replaces all entity names; null or [] clears them.")] IReadOnlyList<string>? entities = null,
        [Description("Replaces the metadata object.")] JsonElement? metadata = null,
        [Description("Where it came from; null clears it.")] string? source = null,
        [Description("Forget it this many seconds from now; null removes the expiry.")] long? ttl_seconds = null,
        [Description("Forget it at this ISO 8601 time; null removes the expiry.")] DateTimeOffset? expires_at = null,
        [Description("ISO 8601 time from which the fact holds; null clears it.")] DateTimeOffset? valid_from = null,
        [Description("ISO 8601 time until which the fact holds; null clears it.")] DateTimeOffset? valid_to = null,
        [Description("Update only if the memory still has this version (its version field), so a concurrent change is not overwritten.")]
        long? expected_version = null,
        [Description(UserIdHelp + MatchScopeHelp)] string? user_id = null,
        [Description(AgentIdHelp + MatchScopeHelp)] string? agent_id = null,
        [Description(SessionIdHelp + MatchScopeHelp)] string? session_id = null,
        [Description(NamespaceHelp + MatchScopeHelp)] string? @namespace = null,
        CancellationToken ct = default)
    {
        // The typed parameters above give the schema and check each value's type; the patch is read from
        // the arguments themselves, because only they tell an argument left out (stays) from null (clears),
        // and it is read with the REST body's rules (MemoryPatch), so both interfaces update alike.
        var patch = McpArguments.Patch(context.Params?.Arguments);
        await GetInScopeAsync(id, McpScope.Of(user_id, agent_id, session_id, @namespace), ct);
        var result = await memories.UpdateAsync(callers.Current, id, patch, expected_version, ct);
        return McpResults.Ok(new WrittenMemory(result));
    }

    [McpServerTool(Name = "memory_delete", Title = "Forget a memory", ReadOnly = false, Destructive = true, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(DeletedMemory))]
    [Description("Delete one memory by id (its history stays readable with memory_history).")]
    public async Task<CallToolResult> DeleteAsync(
        [Description("The memory's id.")] string id,
        [Description(UserIdHelp + MatchScopeHelp)] string? user_id = null,
        [Description(AgentIdHelp + MatchScopeHelp)] string? agent_id = null,
        [Description(SessionIdHelp + MatchScopeHelp)] string? session_id = null,
        [Description(NamespaceHelp + MatchScopeHelp)] string? @namespace = null,
        CancellationToken ct = default)
    {
        await GetInScopeAsync(id, McpScope.Of(user_id, agent_id, session_id, @namespace), ct);
        var seq = await memories.DeleteAsync(callers.Current, id, ct);
        return McpResults.Ok(new DeletedMemory(id, true, seq));
    }

    [McpServerTool(Name = "memory_list", Title = "List memories", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(MemoryListResponse))]
    [Description("List memories newest first, filtered (no ranking: use memory_search to find by topic). " +
        "When next_cursor is not null, call again with cursor = next_cursor for the next page.")]
    public async Task<CallToolResult> ListAsync(
        [Description(UserIdHelp + FilterScopeHelp)] string? user_id = null,
        [Description(AgentIdHelp + FilterScopeHelp)] string? agent_id = null,
        [Description(SessionIdHelp + FilterScopeHelp)] string? session_id = null,
        [Description(NamespaceHelp + FilterScopeHelp)] string? @namespace = null,
        [Description("More filters (type, tier, tags, tags_match, entity, source, metadata, created_after/before, updated_after/before).")]
        McpMemoryFilters? filters = null,
        [Description("Memories per page (1..1000, default 100).")] int? limit = null,
        [Description("next_cursor of the previous page, to continue after it.")] string? cursor = null,
        CancellationToken ct = default)
    {
        var filter = SearchService.ToFilter(McpMemoryFilters.ToSearchFilters(filters, McpScope.Of(user_id, agent_id, session_id, @namespace)));
        var page = await memories.ListAsync(callers.Current, filter, limit, cursor, ct);
        return McpResults.Ok(new MemoryListResponse(page.Items, page.NextCursor));
    }

    [McpServerTool(Name = "memory_history", Title = "History of a memory", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(HistoryResponse))]
    [Description("Every change of one memory, oldest first: created, updated (with the changed fields), deleted or expired; also for deleted memories.")]
    public async Task<CallToolResult> HistoryAsync(
        [Description("The memory's id.")] string id,
        [Description(UserIdHelp + MatchScopeHelp)] string? user_id = null,
        [Description(AgentIdHelp + MatchScopeHelp)] string? agent_id = null,
        [Description(SessionIdHelp + MatchScopeHelp)] string? session_id = null,
        [Description(NamespaceHelp + MatchScopeHelp)] string? @namespace = null,
        CancellationToken ct = default)
    {
        var scope = McpScope.Of(user_id, agent_id, session_id, @namespace);
        var history = await memories.GetHistoryAsync(callers.Current, id, ct);
        return scope.Matches(history) ? McpResults.Ok(new HistoryResponse(history)) : throw McpScope.NoHistory(id);
    }

    [McpServerTool(Name = "memory_stats", Title = "Memory statistics", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(StoreStatistics))]
    [Description("How many memories there are, in all and by type and tier (for an admin key also the store size and index state).")]
    public async Task<CallToolResult> StatsAsync(
        [Description(UserIdHelp + " Count only this scope.")] string? user_id = null,
        [Description(AgentIdHelp + " Count only this scope.")] string? agent_id = null,
        [Description(SessionIdHelp + " Count only this scope.")] string? session_id = null,
        [Description(NamespaceHelp + " Count only this scope.")] string? @namespace = null,
        CancellationToken ct = default)
    {
        var scope = McpScope.Of(user_id, agent_id, session_id, @namespace);
        var filter = new MemoryFilter { UserId = scope.UserId, AgentId = scope.AgentId, SessionId = scope.SessionId, Namespace = scope.Namespace };
        return McpResults.Ok(await engine.GetStatsAsync(callers.Current, filter, ct));
    }

    /// <summary>The memory (the key's scope applied by the service), if the scope arguments match it too.</summary>
    private async Task<Memory> GetInScopeAsync(string id, McpScope scope, CancellationToken ct)
    {
        var memory = await memories.GetAsync(callers.Current, id, ct);
        return scope.Matches(memory) ? memory : throw McpScope.NotFound(id);
    }
}

/// <summary>The answer of memory_delete.</summary>
public sealed record DeletedMemory(string Id, bool Deleted, long Seq);
