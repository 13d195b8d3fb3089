using System.CommandLine;
using Engram.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Options;

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
            WebApplication app;
            try
            {
                app = ServerApplication.Build([], o =>
                {
                    if (dataPath is not null)
                    {
                        o.DataPath = dataPath;
                    }
                }, urls: parse.GetValue(urls));
            }
            catch (OptionsValidationException ex)
            {
                await Console.Error.WriteLineAsync("engram: invalid configuration: " + string.Join("; ", ex.Failures));
                return 1;
            }
            await app.RunAsync();
            return 0;
        });
        return command;
    }
}
