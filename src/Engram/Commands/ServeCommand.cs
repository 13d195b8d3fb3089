using System.CommandLine;
using System.Text.RegularExpressions;
using Engram.Cli.Output;
using Engram.Core.Storage;
using Engram.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram serve</c>: run the server (REST API, health, stats) in the foreground until Ctrl+C.
/// Whatever stops it from starting is one <c>engram: …</c> line and exit 1 (the user can fix it: a
/// setting, a busy port, a folder another server holds) or 2 (the store or the machine failed).
/// </summary>
internal static partial class ServeCommand
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
        var resp = new Option<string?>("--resp")
        {
            Description = "Also speak the Redis protocol (RESP) for key-value state on this address, e.g. 127.0.0.1:6380 (default $ENGRAM_RESP; off when unset).",
            HelpName = "HOST:PORT",
        };
        var store = StoreOption.Create();
        var command = new Command("serve", "Run the Engram server in the foreground (Ctrl+C stops it).") { data, urls, store, resp };
        command.SetAction(async (parse, ct) =>
        {
            var dataPath = parse.GetValue(data);
            var storeUrl = parse.GetValue(store);
            WebApplication app;
            try
            {
                StoreOption.Check(storeUrl);
                app = ServerApplication.Build([], o =>
                {
                    if (dataPath is not null)
                    {
                        o.DataPath = dataPath;
                        o.Store = null; // an explicit --data is SQLite, whatever DATABASE_URL says
                    }
                    if (storeUrl is not null)
                    {
                        o.Store = storeUrl;
                    }
                    if (parse.GetValue(resp) is { } respAddress)
                    {
                        o.Resp.Listen = respAddress;
                    }
                }, urls: parse.GetValue(urls));
            }
            catch (Core.Common.ValidationException ex)
            {
                return Fail(ex.Message, ExitCodes.UserError);
            }
            catch (OptionsValidationException ex)
            {
                return Fail("invalid configuration: " + string.Join("; ", ex.Failures), ExitCodes.UserError);
            }
            catch (ServerLockedException ex)
            {
                return Fail(ex.Message, ExitCodes.UserError);
            }
            catch (OpenModeRefusedException ex)
            {
                return Fail(ex.Message, ExitCodes.UserError);
            }
            catch (StoreException ex)
            {
                return Fail(ex.Message, ExitCodes.SystemError);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                return Fail("cannot start: " + FirstLine(ex.Message), ExitCodes.SystemError);
            }
            await using (app)
            {
                try
                {
                    await app.StartAsync(ct);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    return Fail(ListenFailure(ex, parse.GetValue(urls)), ex is IOException or InvalidOperationException or FormatException ? ExitCodes.UserError : ExitCodes.SystemError);
                }
                await app.WaitForShutdownAsync(CancellationToken.None);
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private static int Fail(string message, int code)
    {
        Console.Error.WriteLine("engram: " + message);
        return code;
    }

    /// <summary>Kestrel's bind failure as one line; for a busy port, with the flag that picks another.</summary>
    private static string ListenFailure(Exception ex, string? configuredUrls)
    {
        if ((ex as Engram.Server.Resp.RespListenException ?? ex.InnerException as Engram.Server.Resp.RespListenException) is { } resp)
        {
            return resp.Message;
        }
        var busy = ex as AddressInUseException ?? ex.InnerException as AddressInUseException;
        var match = FailedAddress().Match(ex.Message);
        var url = match.Success ? match.Groups["url"].Value : configuredUrls ?? EngramServerOptions.DefaultUrls;
        if (busy is null)
        {
            return $"cannot listen on {url}: {FirstLine(ex.Message)}";
        }
        var suggestion = Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Port is > 0 and < 65535
            ? $"{uri.Scheme}://{uri.Host}:{uri.Port + 1}"
            : "http://127.0.0.1:7071";
        return $"{url} is already in use (another engram serve, or another program); choose another address with --urls {suggestion}";
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    [GeneratedRegex(@"bind to address (?<url>\S+?): ")]
    private static partial Regex FailedAddress();
}
