using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// Engram's MCP server, the same for both transports: its identity, instructions, tools, resources and
/// prompts, the message checks (<see cref="McpMessageChecks"/>), and the call filter that checks roles and turns
/// user errors into tool errors. The server
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
        builder.WithMessageFilters(filters => filters.AddIncomingFilter(McpMessageChecks.Filter));
        builder.WithRequestFilters(filters => filters.AddCallToolFilter(McpToolFailures.Filter));
        // Options of this container's own: the SDK caches each method's descriptor per serializer options, and the
        // descriptor holds this container's services. Keyed by shared static options, that cache would keep every
        // server ever built in the process alive (the test suite builds hundreds); keyed by these, it goes with them.
        var tools = new JsonSerializerOptions(McpResults.Json);
        var defaults = new JsonSerializerOptions(McpJsonUtilities.DefaultOptions);
        builder.WithTools<MemoryTools>(tools);
        builder.WithTools<KeyValueTools>(tools);
        builder.WithTools<GraphTools>(tools);
        AddResources<MemoryResources>(builder, defaults);
        AddResources<GraphResources>(builder, defaults);
        builder.WithPrompts<MemoryPrompts>(defaults);
        builder.WithPortableSchemas(); // after the tools: rewrites every registered tool's schemas
        return builder;
    }

    /// <summary>
    /// WithResources&lt;T&gt;() with <paramref name="json"/> as the serializer options (the SDK's has no such overload):
    /// each [McpServerResource] method of <typeparamref name="T"/>, on an instance made per request from its services.
    /// </summary>
    private static void AddResources<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.PublicConstructors)] T>(
        IMcpServerBuilder builder, JsonSerializerOptions json)
    {
        foreach (var method in typeof(T).GetMethods(BindingFlags.Public | BindingFlags.Instance))
        {
            if (method.GetCustomAttribute<McpServerResourceAttribute>() is null)
            {
                continue;
            }
            builder.Services.AddSingleton(services => McpServerResource.Create(method,
                request => ActivatorUtilities.CreateInstance(request.Services ?? services, typeof(T)),
                new McpServerResourceCreateOptions { Services = services, SerializerOptions = json }));
        }
    }
}
