using Engram.Core;
using Engram.Server.Jobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;

namespace Engram.Cli.Mcp;

/// <summary>
/// Starts the server's background jobs for <c>engram mcp</c> once the handshake is over (or after
/// <see cref="Fallback"/>, for a client that connects and waits): the index is loaded (snapshot or
/// rebuild) so that the first search does not wait long, expired memories and keys are swept, vectors
/// and snapshots are maintained. On exit the jobs stop as the server's do: access counts are flushed and
/// the index snapshot saved. Nothing here runs before the handshake, so it never delays it.
/// </summary>
internal sealed partial class DeferredJobs(HandshakeSignal handshake, StdioEngine factory, IServiceProvider services, ILogger<DeferredJobs> logger)
    : BackgroundService
{
    /// <summary>How long after start-up the jobs start even without a handshake.</summary>
    public static readonly TimeSpan Fallback = TimeSpan.FromSeconds(3);

    private IReadOnlyList<IHostedService> _jobs = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.WhenAny(handshake.Completed, Task.Delay(Fallback, stoppingToken));
            stoppingToken.ThrowIfCancellationRequested();
            // Opening the engine is the first slow step; off the transport's threads.
            var engine = await Task.Run(services.GetRequiredService<EngramEngine>, stoppingToken);
            var jobs = EngramJobs.Create(services, engine, factory.Options);
            foreach (var job in jobs)
            {
                await job.StartAsync(stoppingToken);
            }
            _jobs = jobs;
        }
        catch (McpException)
        {
            // The folder cannot serve: StdioEngine logged why, and every tool call says so.
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogFailed(logger, ex);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        foreach (var job in _jobs.Reverse())
        {
            await job.StopAsync(cancellationToken);
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Error, Message = "the background jobs of engram mcp could not start")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
