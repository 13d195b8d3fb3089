using System.CommandLine;
using Engram.Cli.Client;
using Engram.Cli.Mcp;
using Engram.Cli.Output;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Security;
using Engram.Server.Mcp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram mcp</c>: an MCP server on stdin/stdout for Claude Desktop, Claude Code, Cursor and every
/// MCP client that starts its servers as processes. In process on a data folder (the default), stdout
/// carries only the protocol and logs go to stderr. Nothing slow runs before the handshake: the store
/// opens on the first tool call or right after the handshake, when the background jobs start (index
/// loading, the TTL sweep, vector and snapshot maintenance); the first search may wait for the index.
/// With <c>--server</c> it is a thin proxy to a running server's <c>/mcp</c> instead (<see cref="McpProxy"/>).
/// </summary>
internal static class McpCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data")
        {
            Description = $"Data folder holding engram.db, created when missing (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).",
            HelpName = "DIR",
        };
        var server = new Option<string?>("--server")
        {
            Description = $"Forward to a running Engram server's /mcp at this base URL instead (default ${BackendOptions.ServerVariable}); " +
                $"its API key from ${HttpMemoryClient.ApiKeyVariable}. Holds no store and no index.",
            HelpName = "URL",
        };
        var tenant = new Option<string?>("--tenant")
        {
            Description = $"Tenant the tools act in (default {Caller.DefaultTenant}; with --server, the key's tenant, and another one needs an admin key).",
            HelpName = "NAME",
        };
        var command = new Command("mcp", "Serve MCP over stdio (for Claude Desktop, Claude Code, Cursor): memories, key-value state and the knowledge graph.")
        {
            data, server, tenant,
        };
        var storeUrl = StoreOption.Create();
        command.Options.Add(storeUrl);
        command.SetAction(async (parse, ct) =>
        {
            var dataFlag = parse.GetValue(data);
            var serverUrl = parse.GetValue(server);
            var storeFlag = parse.GetValue(storeUrl);
            if ((dataFlag ?? storeFlag) is not null && serverUrl is not null)
            {
                return ErrorReporter.ReportUsage($"give {(dataFlag is null ? "--store" : "--data")} or --server, not both", Console.Error, json: false);
            }
            dataFlag ??= storeFlag;
            // As for the other commands: an explicit --data beats ENGRAM_SERVER.
            serverUrl ??= dataFlag is null && Environment.GetEnvironmentVariable(BackendOptions.ServerVariable) is { Length: > 0 } envServer ? envServer : null;
            if (serverUrl is not null)
            {
                return await RunProxyAsync(serverUrl, parse.GetValue(tenant), ct);
            }
            string dataPath;
            try
            {
                dataPath = StoreOption.Resolve(storeFlag, storeFlag is null ? parse.GetValue(data) : null);
            }
            catch (ValidationException ex)
            {
                return ErrorReporter.ReportUsage(ex.Message, Console.Error, json: false);
            }
            var tenantName = parse.GetValue(tenant) ?? Caller.DefaultTenant;
            var host = BuildInProcess(dataPath, new Caller(tenantName, "mcp"));
            await host.RunAsync(ct);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The thin proxy: stdio in front of the server's /mcp (McpProxy), with the key from the environment, never a flag.</summary>
    private static async Task<int> RunProxyAsync(string serverUrl, string? tenant, CancellationToken ct)
    {
        Uri endpoint;
        try
        {
            endpoint = McpEndpointOf(BackendOptions.ServerUri(serverUrl));
            if (tenant is not null)
            {
                TenantNames.Require(tenant, "--tenant");
            }
        }
        catch (ValidationException ex)
        {
            return ErrorReporter.ReportUsage(ex.Message, Console.Error, json: false);
        }
        var key = Environment.GetEnvironmentVariable(HttpMemoryClient.ApiKeyVariable) is { Length: > 0 } k ? k.Trim() : null;
        await using var upstream = new UpstreamMcp(endpoint, key, tenant, Console.Error);
        using var host = McpProxy.Build(upstream);
        _ = upstream.WarmUpAsync(ct);
        await host.RunAsync(ct);
        return ExitCodes.Ok;
    }

    /// <summary>The server's base URL names the server (as for every --server); its MCP endpoint is /mcp under it. A URL that already ends in /mcp is taken as it is.</summary>
    internal static Uri McpEndpointOf(Uri baseUri) =>
        baseUri.AbsolutePath.TrimEnd('/').EndsWith("/mcp", StringComparison.Ordinal)
            ? new Uri(baseUri.GetLeftPart(UriPartial.Path).TrimEnd('/'))
            : new Uri(baseUri, "mcp");

    /// <summary>
    /// The stdio host over a data folder. Before the handshake it builds only the host and the MCP server:
    /// the engine opens on the first tool call or, with the background jobs, once the handshake is done
    /// (<see cref="DeferredJobs"/>). Logs go to stderr; stdout is the transport's alone.
    /// </summary>
    private static IHost BuildInProcess(string dataPath, Caller caller)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.AddSimpleConsole(format => format.SingleLine = true); // one line per event: clients show stderr as a log
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IMcpCallerSource>(new FixedMcpCallerSource(caller));
        builder.Services.AddSingleton(sp => new StdioEngine(dataPath, sp.GetRequiredService<ILogger<StdioEngine>>()));
        builder.Services.AddSingleton(sp => sp.GetRequiredService<StdioEngine>().Open());
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Memories);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Search);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Graph);
        builder.Services.AddSingleton<KvService>(sp => sp.GetRequiredService<EngramEngine>().KeyValue);
        var handshake = new HandshakeSignal();
        builder.Services.AddSingleton(handshake);
        builder.Services.AddHostedService<DeferredJobs>();
        builder.Services.AddEngramMcp()
            .WithMessageFilters(filters => filters.AddIncomingFilter(handshake.Filter))
            .WithStreamServerTransport(StdioLines.Stdin.Input, StdioLines.Stdin.Output);
        return builder.Build();
    }
}
