using Engram.Core;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// A stopped server lets go of everything it held (engine, indexes, store): nothing process-wide (a timer, a
/// library's static cache) keeps it reachable. The test suite hosts hundreds of servers in one process; when
/// each stayed reachable, the process grew to 13 GB and its garbage collections paused every test for seconds.
/// </summary>
public sealed class ServerLifetimeTests
{
    [Fact]
    public async Task A_disposed_server_is_collected()
    {
        var engines = new List<WeakReference>();
        for (var i = 0; i < 12; i++)
        {
            engines.Add(await UseAndDisposeAsync(i));
        }
        for (var i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        // System.Text.Json shares one caching context among equal serializer options and that context keeps the
        // first options instance it met: the MCP tool options of at most one server each for the two kinds of options
        // (tools, resources) can stay reachable. That is a bound, not a leak; 12 of 12 alive was the leak.
        engines.Count(e => e.IsAlive).Should().BeLessThanOrEqualTo(2);
    }

    private static async Task<WeakReference> UseAndDisposeAsync(int i)
    {
        var server = await EngramServer.StartAsync();
        // Touch what starts timers and caches: a write, a search, the metrics, an MCP session, a rate-limited request.
        await server.CreateAsync(new { content = $"memory {i} about the lifetime of a server" });
        await server.SearchAsync(new { query = "lifetime" });
        (await server.Client.GetAsync("/metrics")).EnsureSuccessStatusCode();
        await using (var mcp = await McpConnections.ConnectHttpAsync(server))
        {
            (await mcp.ListResourcesAsync()).Should().NotBeEmpty();
        }
        var engine = new WeakReference(server.Services.GetService(typeof(EngramEngine)) ?? throw new InvalidOperationException("no engine"));
        await server.DisposeAsync();
        return engine;
    }
}
