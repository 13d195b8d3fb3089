using System.CommandLine;
using Engram.Server;

namespace Engram.Cli.Commands;

/// <summary><c>engram serve</c>: run the server (REST API, health, stats) in the foreground until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data")
        {
            Description = $"Data folder holding engram.db (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).",
            HelpName = "DIR",
        };
        var urls = new Option<string?>("--urls")
        {
            Description = $"Addresses to listen on, ';'-separated (default {EngramServerOptions.DefaultUrls}).",
            HelpName = "URLS",
        };
        var command = new Command("serve", "Run the Engram server in the foreground (Ctrl+C stops it).") { data, urls };
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
