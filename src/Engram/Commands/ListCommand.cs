using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Memories;
using Engram.Server.Http;

namespace Engram.Cli.Commands;

/// <summary><c>engram list</c>: memories newest first, filtered and paged (GET /v1/memories).</summary>
internal static class ListCommand
{
    public static Command Create()
    {
        var filters = new FilterOptions("list");
        var limit = OptionFactory.Count("--limit", "Memories per page (default 50, at most 1000).");
        var cursor = OptionFactory.Text("--cursor", "Continue after an earlier page: its next_cursor.", "CURSOR");
        var all = new Option<bool>("--all") { Description = "Follow the cursors and print every matching memory." };

        return MemoryCommand.Create("list", "List memories, newest first.", async context =>
        {
            var filter = filters.Build(context.Parse);
            var pageSize = context.Get(limit); // any value goes to the backend, which owns the limit's rule and message
            var followCursors = context.Get(all);
            var printer = new ListPrinter(context.Output, context.Json);
            var next = context.Get(cursor);
            do
            {
                var page = await context.Client.ListAsync(filter, pageSize, next, context.CancellationToken);
                next = page.NextCursor;
                printer.Page(page.Items);
            }
            while (followCursors && next is not null);
            printer.End(next);
        }, configure: command =>
        {
            filters.AddTo(command);
            command.Options.Add(limit);
            command.Options.Add(cursor);
            command.Options.Add(all);
        });
    }

    /// <summary>
    /// Prints pages as they arrive, so <c>--all</c> over a large store needs memory for one page,
    /// not for the whole listing. The JSON is the <see cref="MemoryListResponse"/> shape either way.
    /// </summary>
    private sealed class ListPrinter(TextWriter output, bool json)
    {
        private int _count;

        public void Page(IReadOnlyList<Memory> items)
        {
            foreach (var memory in items)
            {
                if (json)
                {
                    output.Write(_count == 0 ? "{\"items\":[" : ",");
                    output.Write(JsonOutput.Serialize(memory));
                }
                else
                {
                    if (_count == 0)
                    {
                        MemoryTable.WriteHeader(output);
                    }
                    MemoryTable.WriteRow(output, memory);
                }
                _count++;
            }
        }

        public void End(string? nextCursor)
        {
            if (json)
            {
                output.Write(_count == 0 ? "{\"items\":[" : "");
                output.WriteLine($"],\"next_cursor\":{JsonOutput.Serialize(nextCursor)}}}");
                return;
            }
            if (_count == 0)
            {
                output.WriteLine("No memories match.");
            }
            else
            {
                output.WriteLine();
                output.WriteLine(_count == 1 ? "1 memory" : $"{_count} memories");
            }
            if (nextCursor is not null)
            {
                output.WriteLine($"More: add --cursor {nextCursor} (or --all).");
            }
        }
    }
}
