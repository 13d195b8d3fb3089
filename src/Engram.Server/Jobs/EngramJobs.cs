using Engram.Core;
using Engram.Core.KeyValue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Engram.Server.Jobs;

/// <summary>
/// The server's background jobs (<see cref="ExpirySweeper"/>, <see cref="IndexMaintenance"/>) for a host
/// that decides itself when they start: <c>engram mcp</c> starts them only after the MCP handshake, since
/// they need the open store and the first thing they do is load the index. The engine and the settings
/// are passed in (the caller owns the engine); loggers and the <see cref="TimeProvider"/> come from
/// <paramref name="services"/>.
/// </summary>
public static class EngramJobs
{
    public static IReadOnlyList<IHostedService> Create(IServiceProvider services, EngramEngine engine, EngramServerOptions options)
    {
        var settings = Options.Create(options);
        return
        [
            ActivatorUtilities.CreateInstance<ExpirySweeper>(services, engine.Store, (IKeyValueStore)engine.Store, settings),
            ActivatorUtilities.CreateInstance<IndexMaintenance>(services, engine, settings),
        ];
    }
}
