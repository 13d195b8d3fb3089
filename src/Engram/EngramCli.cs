using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using Engram.Cli.Commands;
using Engram.Cli.Output;
using Engram.Core.Storage;

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
            KeysCommand.Create(),
            McpCommand.Create(),
            ImportCommand.Create(),
            AuditCommand.Create(),
            BenchCommand.Create(),
            DoctorCommand.Create(),
            BackupCommand.Create(),
            RestoreCommand.Create(),
            ExportCommand.Create(),
            MigrateCommand.Create(),
            MaintenanceCommand.Create(),
            ReflectCommand.Create(),
        };
        // Response files (@file) are off: memory content often starts with '@' (a mention, a handle).
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (!SpeaksOnTheConsole(parse.CommandResult))
        {
            TerminalSafeWriter.Install();
        }
        if (parse.Action is ParseErrorAction)
        {
            return ReportParseErrors(parse, args);
        }
        // What a store's open recovered from (a key-value journal moved aside, damage in it): on stderr, once each, whatever
        // the command opened the store for. The server logs its own store's, and doctor reports them among its checks.
        StoreNotice.Listener = CommandPath(parse.CommandResult).FirstOrDefault() is "serve" or "doctor" ? null : PrintNotice;
        return await parse.InvokeAsync();
    }

    private static void PrintNotice(StoreNotice notice)
    {
        Console.Error.WriteLine($"engram: warning: {notice.Message}");
        Console.Error.WriteLine($"engram: what to do: {StoreNotice.FixFor(notice.Kind)}");
    }

    /// <summary>
    /// Bad flags are user errors: one <c>engram: message</c> line on stderr (a problem object with
    /// <c>--json</c>) and exit 1, like every other error (System.CommandLine's default would print the
    /// whole help text as well). A mistyped command or flag gets the close ones suggested.
    /// </summary>
    private static int ReportParseErrors(ParseResult parse, string[] args)
    {
        var command = parse.CommandResult.Command;
        var messages = Describe(parse, command);
        var name = command is RootCommand ? "engram" : "engram " + string.Join(' ', CommandPath(parse.CommandResult));
        var json = WantsJson(args);
        var code = ErrorReporter.ReportUsage(string.Join("; ", messages), Console.Error, json);
        if (!json)
        {
            Console.Error.WriteLine($"Run '{name} --help' for usage.");
        }
        return code;
    }

    /// <summary>
    /// The errors worth reading, each once. A mistyped command makes every later token unmatched, and
    /// a mistyped flag is taken as a positional value (leaving the real value unmatched): only the
    /// typo itself is reported then, with the names close to it.
    /// </summary>
    private static List<string> Describe(ParseResult parse, Command command)
    {
        var unknown = parse.UnmatchedTokens;
        if (unknown.Count > 0 && !unknown[0].StartsWith('-') && command.Subcommands.Count > 0)
        {
            return [$"unknown command '{unknown[0]}'" + Suggestions.DidYouMean(unknown[0], command.Subcommands.Select(c => c.Name))];
        }
        var flagLike = command.Arguments
            .SelectMany(a => parse.GetResult(a)?.Tokens ?? [])
            .Select(t => t.Value)
            .Where(v => v.Length > 1 && v[0] == '-' && parse.Tokens.All(t => t.Type != TokenType.DoubleDash))
            .Concat(unknown.Where(t => t.StartsWith('-')))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (flagLike.Count > 0)
        {
            return flagLike.Select(t => $"unknown option '{t}'" + Suggestions.DidYouMean(t, command.Options.Select(o => o.Name))).ToList();
        }
        if (unknown.Count > 0)
        {
            return unknown.Select(t => $"unexpected argument '{t}' (quote text that contains spaces)").ToList();
        }
        // System.CommandLine says "Required argument missing for command: 'set'" once per missing argument, without its name.
        var missing = command.Arguments
            .Where(a => a.Arity.MinimumNumberOfValues > 0 && !a.HasDefaultValue && (parse.GetResult(a)?.Tokens.Count ?? 0) == 0)
            .Select(a => $"<{a.Name}>")
            .ToList();
        var errors = parse.Errors.Select(e => e.Message.TrimEnd('.'))
            .Where(m => missing.Count == 0 || !m.StartsWith("Required argument missing", StringComparison.Ordinal));
        if (missing.Count > 0)
        {
            errors = errors.Prepend($"missing {(missing.Count == 1 ? "argument" : "arguments")} {string.Join(' ', missing)}");
        }
        return errors.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// serve logs through the console logger (its colours are escape sequences) and mcp speaks JSON-RPC on stdio: their
    /// output is left as it is; every other command's goes through <see cref="TerminalSafeWriter"/>.
    /// </summary>
    private static bool SpeaksOnTheConsole(CommandResult result) =>
        CommandPath(result).FirstOrDefault() is "serve" or "mcp";

    private static IEnumerable<string> CommandPath(CommandResult result)
    {
        var names = new Stack<string>();
        for (SymbolResult? current = result; current is CommandResult { Command: not RootCommand } c; current = c.Parent)
        {
            names.Push(c.Command.Name);
        }
        return names;
    }

    /// <summary>Whether <c>--json</c> was given as a flag (not as text after <c>--</c>).</summary>
    private static bool WantsJson(string[] args)
    {
        foreach (var arg in args)
        {
            if (arg == "--")
            {
                return false;
            }
            if (arg == "--json")
            {
                return true;
            }
        }
        return false;
    }
}
