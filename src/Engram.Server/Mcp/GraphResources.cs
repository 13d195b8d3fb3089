using System.ComponentModel;
using System.Text.Json;
using Engram.Core.Graph;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// <c>memory://knowledge-graph</c>: the caller's whole graph as JSON, the resource the MCP reference memory
/// server exposes (same URI, same shape as read_graph), for clients that attach resources to a conversation.
/// </summary>
[McpServerResourceType]
internal sealed class GraphResources(GraphService graph, IMcpCallerSource callers)
{
    public const string Uri = "memory://knowledge-graph";

    [McpServerResource(UriTemplate = Uri, Name = "knowledge-graph", Title = "Knowledge graph", MimeType = "application/json")]
    [Description("Every entity of the knowledge graph with its observations, and every relation: what read_graph returns.")]
    public async Task<TextResourceContents> ReadAsync(CancellationToken ct = default)
    {
        var result = GraphResult.Of(await graph.ReadGraphAsync(callers.Current, includeInvalid: false, ct));
        return new TextResourceContents { Uri = Uri, MimeType = "application/json", Text = JsonSerializer.Serialize(result, McpResults.Json) };
    }
}
