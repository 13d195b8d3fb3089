using System.CommandLine;
using Engram.Server;

namespace Engram.Cli;

/// <summary>The <c>engram</c> command line: builds the command tree and runs it. Exit codes: 0 ok, 1 user error, 2 system error.</summary>
public static class EngramCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Engram: persistent memory for AI agents.");
        root.Subcommands.Add(ServeCommand());
        return await root.Parse(args).InvokeAsync();
    }

    private static Command ServeCommand()
    {
        var data = new Option<string?>("--data") { Description = "Data folder (default ./data, or ENGRAM_DATA)." };
        var urls = new Option<string?>("--urls") { Description = $"Addresses to listen on (default {EngramServerOptions.DefaultUrls})." };
        var command = new Command("serve", "Run the Engram server.") { data, urls };
        command.SetAction(async (parse, ct) =>
        {
            var dataPath = parse.GetValue(data);
            var app = ServerApplication.Build([], o =>
            {
                if (dataPath is not null)
                {
                    o.DataPath = dataPath;
                }
            }, urls: parse.GetValue(urls));
            await app.RunAsync();
            return 0;
        });
        return command;
    }
}
