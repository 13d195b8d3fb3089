using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Protocol;

namespace Engram.Server.Mcp;

/// <summary>
/// Engram's MCP server, the same for both transports: its identity, instructions, tools, resources and
/// prompts, and the call filter that checks roles and turns user errors into tool errors. The server
/// adds the Streamable HTTP transport (<c>/mcp</c>); <c>engram mcp</c> adds stdio.
/// </summary>
public static class EngramMcp
{
    public const string Instructions =
        "Engram is a persistent memory. Use memory_search before answering questions about the user or past work, " +
        "memory_store to remember durable facts, preferences and decisions (one fact per memory), kv_* for scratch state " +
        "with TTLs, and the graph tools (create_entities, create_relations, add_observations, search_nodes, open_nodes, read_graph) " +
        "for entities and how they relate. Scope memories with user_id, agent_id, session_id or namespace.";

    /// <summary>Registers the MCP server with every Engram tool; the caller adds a transport.</summary>
    public static IMcpServerBuilder AddEngramMcp(this IServiceCollection services)
    {
        var builder = services.AddMcpServer(options =>
        {
            options.ServerInfo = new Implementation { Name = "engram", Title = "Engram memory", Version = Http.SystemEndpoints.Version };
            options.ServerInstructions = Instructions;
        });
        builder.WithRequestFilters(filters => filters.AddCallToolFilter(McpToolFailures.Filter));
        builder.WithTools<MemoryTools>(McpResults.Json);
        builder.WithTools<KeyValueTools>(McpResults.Json);
        builder.WithTools<GraphTools>(McpResults.Json);
        builder.WithResources<MemoryResources>();
        builder.WithResources<GraphResources>();
        builder.WithPrompts<MemoryPrompts>();
        builder.WithPortableSchemas(); // after the tools: rewrites every registered tool's schemas
        return builder;
    }
}
