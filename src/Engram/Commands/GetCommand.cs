using System.CommandLine;
using Engram.Cli.Output;

namespace Engram.Cli.Commands;

/// <summary><c>engram get ID</c>: show one memory (GET /v1/memories/{id}).</summary>
internal static class GetCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The memory's id." };
        return MemoryCommand.Create("get", "Show one memory.", async context =>
        {
            var memoryId = CliInput.MemoryId(context.Get(id)!);
            var memory = await context.Client.GetAsync(memoryId, context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, memory);
            }
            else
            {
                MemoryView.Write(context.Output, memory);
            }
        }, configure: command => command.Arguments.Add(id));
    }
}
