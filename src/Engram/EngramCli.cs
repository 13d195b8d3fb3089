using System.CommandLine;
using System.CommandLine.Invocation;
using Engram.Cli.Commands;
using Engram.Cli.Output;

namespace Engram.Cli;

/// <summary>The <c>engram</c> command line: builds the command tree and runs it. Exit codes: 0 ok, 1 user error, 2 system error.</summary>
public static class EngramCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Engram: persistent memory for AI agents.")
        {
            ServeCommand.Create(),
            AddCommand.Create(),
            GetCommand.Create(),
            ListCommand.Create(),
            UpdateCommand.Create(),
            DeleteCommand.Create(),
            HistoryCommand.Create(),
            StatsCommand.Create(),
            SearchCommand.Create(),
            GraphCommand.Create(),
            ReindexCommand.Create(),
            KvCommand.Create(),
            BenchCommand.Create(),
        };
        // Response files (@file) are off: memory content often starts with '@' (a mention, a handle).
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Action is ParseErrorAction)
        {
            return ReportParseErrors(parse);
        }
        return await parse.InvokeAsync();
    }

    /// <summary>
    /// Bad flags are user errors: one <c>engram: message</c> line each on stderr and exit 1, like every
    /// other error (System.CommandLine's default would print the whole help text as well).
    /// </summary>
    private static int ReportParseErrors(ParseResult parse)
    {
        foreach (var error in parse.Errors)
        {
            Console.Error.WriteLine("engram: " + error.Message);
        }
        var command = string.Join(' ', parse.CommandResult.Command is RootCommand ? ["engram"] : new[] { "engram", parse.CommandResult.Command.Name });
        Console.Error.WriteLine($"Run '{command} --help' for usage.");
        return ExitCodes.UserError;
    }
}
