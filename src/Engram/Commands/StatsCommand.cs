using System.CommandLine;
using Engram.Cli.Output;

namespace Engram.Cli.Commands;

/// <summary><c>engram stats</c>: counts by type and tier, store size, last change (GET /v1/stats).</summary>
internal static class StatsCommand
{
    public static Command Create() =>
        MemoryCommand.Create("stats", "Show how many memories there are and how big the store is.", async context =>
        {
            var stats = await context.Client.GetStatsAsync(context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, stats);
            }
            else
            {
                StatsView.Write(context.Output, stats);
            }
        });
}
