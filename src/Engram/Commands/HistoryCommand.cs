using System.CommandLine;
using Engram.Cli.Output;

namespace Engram.Cli.Commands;

/// <summary><c>engram history ID</c>: every change of a memory, also after it was deleted (GET /v1/memories/{id}/history).</summary>
internal static class HistoryCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The memory's id (deleted memories keep their history)." };
        return MemoryCommand.Create("history", "Show how a memory changed over time, oldest first.", async context =>
        {
            var memoryId = CliInput.MemoryId(context.Get(id)!);
            var history = await context.Client.GetHistoryAsync(memoryId, context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, history);
            }
            else
            {
                HistoryView.Write(context.Output, history.Items);
            }
        }, configure: command => command.Arguments.Add(id));
    }
}
