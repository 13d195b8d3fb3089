using System.CommandLine;
using System.CommandLine.Parsing;
using Engram.Cli.Output;
using Engram.Core.Common;

namespace Engram.Cli.Commands;

/// <summary>Creates a memory command with the backend options and an action whose failures become <c>engram: message</c> and an exit code.</summary>
internal static class MemoryCommand
{
    public static Command Create(string name, string description, Func<CommandContext, Task> run, bool createsData = false, Action<Command>? configure = null)
    {
        var command = new Command(name, description);
        configure?.Invoke(command);
        var backend = new BackendOptions();
        backend.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                RefuseUnknownOptions(parse, command);
                await using var context = new CommandContext(parse, backend, createsData) { CancellationToken = ct };
                await run(context);
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, parse.GetValue(backend.Json), command);
            }
        });
        return command;
    }

    /// <summary>
    /// System.CommandLine binds an unknown <c>--flag</c> to a free positional argument (so
    /// <c>engram add --tpye x</c> would remember the text "--tpye"). A positional value that looks like
    /// an option is refused unless it follows <c>--</c>, the usual way to pass such text.
    /// </summary>
    private static void RefuseUnknownOptions(ParseResult parse, Command command)
    {
        var doubleDash = -1;
        for (var i = 0; i < parse.Tokens.Count; i++)
        {
            if (parse.Tokens[i].Type == TokenType.DoubleDash)
            {
                doubleDash = i;
                break;
            }
        }
        foreach (var argument in command.Arguments)
        {
            foreach (var token in parse.GetResult(argument)?.Tokens ?? [])
            {
                if (token.Value.Length > 1 && token.Value[0] == '-' && (doubleDash < 0 || IndexOf(parse.Tokens, token) < doubleDash))
                {
                    var close = Suggestions.DidYouMean(token.Value, command.Options.Select(o => o.Name));
                    throw new ValidationException(argument.Name, close.Length > 0
                        ? $"unknown option '{token.Value}'{close}"
                        : $"unknown option '{token.Value}'; to pass text that starts with '-', put it after --, e.g. engram {CommandPath(command)} -- \"{token.Value}\"");
                }
            }
        }
    }

    /// <summary>The command as typed after <c>engram</c>: <c>kv expire</c>, not <c>expire</c>.</summary>
    private static string CommandPath(Command command)
    {
        var names = new List<string> { command.Name };
        for (var parent = command.Parents.OfType<Command>().FirstOrDefault(); parent is not null and not RootCommand;
             parent = parent.Parents.OfType<Command>().FirstOrDefault())
        {
            names.Insert(0, parent.Name);
        }
        return string.Join(' ', names);
    }

    private static int IndexOf(IReadOnlyList<Token> tokens, Token token)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            if (ReferenceEquals(tokens[i], token))
            {
                return i;
            }
        }
        return -1;
    }
}
