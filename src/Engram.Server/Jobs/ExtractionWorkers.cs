using Engram.Core.Llm;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Jobs;

/// <summary>
/// Runs extraction jobs (<see cref="ConversationExtractor"/>): Engram:Llm:ExtractionWorkers loops, each taking one due job
/// at a time from the store's queue (this instance's, another's, or one whose worker died), woken at once by a job queued
/// here and otherwise looking every second (retries come due, other instances queue). Nothing runs without a model.
/// </summary>
internal sealed partial class ExtractionWorkers(ConversationExtractor extractor, LlmAccess llm, ILogger<ExtractionWorkers> logger) : BackgroundService
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (llm.Model is not { } model || model.Options.ExtractionWorkers == 0)
        {
            return Task.CompletedTask;
        }
        var instance = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";
        return Task.WhenAll(Enumerable.Range(0, model.Options.ExtractionWorkers).Select(i => Task.Run(() => LoopAsync($"{instance}:{i}", stoppingToken), stoppingToken)));
    }

    private async Task LoopAsync(string owner, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await extractor.RunOneAsync(owner, stoppingToken))
                {
                    await extractor.WaitForWorkAsync(Poll, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The store is away (the claim failed) or something unforeseen: the job keeps its lease and is taken again later.
                LogFailed(logger, ex);
                try
                {
                    await Task.Delay(Poll, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "extraction worker: a job could not be taken or recorded; trying again")]
    private static partial void LogFailed(ILogger logger, Exception ex);
}
