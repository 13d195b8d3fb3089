using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Server.Http;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram delete ID</c> (DELETE /v1/memories/{id}), or <c>engram delete --user U --confirm</c> to delete
/// everything matching a scope and filters (DELETE /v1/memories?...). History is kept either way.
/// </summary>
internal static class DeleteCommand
{
    public static Command Create()
    {
        var id = new Argument<string?>("id") { Description = "The memory to delete; leave out to delete by filter.", Arity = ArgumentArity.ZeroOrOne };
        var filters = new FilterOptions("delete from");
        var confirm = new Option<bool>("--confirm") { Description = "Required to delete by filter: yes, delete every match." };

        return MemoryCommand.Create("delete", "Delete one memory by id, or every memory matching a scope (with --confirm).", async context =>
        {
            var memoryId = context.Get(id) is { } text ? CliInput.MemoryId(text) : null;
            var byFilter = filters.AnyGiven(context.Parse);
            if (memoryId is not null)
            {
                if (byFilter || context.Get(confirm))
                {
                    throw new ValidationException("id", "give an id or filters (with --confirm), not both");
                }
                var seq = await context.Client.DeleteAsync(memoryId, context.CancellationToken);
                Print(context, new BulkDeleteResponse(1, seq), $"Deleted {memoryId}.");
                return;
            }

            if (!byFilter)
            {
                throw new ValidationException("id", "give the id of the memory to delete, or filters such as --user U with --confirm");
            }
            var filter = filters.Build(context.Parse);
            // Checked here rather than left to the service so the message names the CLI's flags.
            if (!filter.HasScope)
            {
                throw new ValidationException("user_id", "a bulk delete needs at least one scope filter: --user, --agent, --session or --namespace");
            }
            if (!context.Get(confirm))
            {
                throw new ValidationException("confirm", "this deletes every matching memory; add --confirm to go ahead (engram list with the same filters shows them)");
            }
            var result = await context.Client.DeleteManyAsync(filter, context.CancellationToken);
            Print(context, result, result.Deleted == 1 ? "Deleted 1 memory." : $"Deleted {result.Deleted} memories.");
        }, configure: command =>
        {
            command.Arguments.Add(id);
            filters.AddTo(command);
            command.Options.Add(confirm);
        });
    }

    /// <summary>JSON: the bulk delete's body for both forms (the single delete's HTTP answer is an empty 204).</summary>
    private static void Print(CommandContext context, BulkDeleteResponse result, string text)
    {
        if (context.Json)
        {
            JsonOutput.Write(context.Output, result);
        }
        else
        {
            context.Output.WriteLine(text);
        }
    }
}
