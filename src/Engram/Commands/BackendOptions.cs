using System.CommandLine;
using Engram.Cli.Client;
using Engram.Core.Common;

namespace Engram.Cli.Commands;

/// <summary>
/// The options every memory command shares: where the memories are (<c>--data</c> in process, or
/// <c>--server</c> over HTTP) and how to print them (<c>--json</c>). Each command gets its own
/// instances because an option belongs to one command in System.CommandLine.
/// </summary>
internal sealed class BackendOptions
{
    public const string DataVariable = "ENGRAM_DATA";
    public const string ServerVariable = "ENGRAM_SERVER";
    public const string DefaultData = "data";

    public Option<string?> Data { get; } = new("--data")
    {
        Description = $"Data folder to work on in process (default ${DataVariable}, else ./{DefaultData}).",
        HelpName = "DIR",
    };

    public Option<string?> Server { get; } = new("--server")
    {
        Description = $"Base URL of a running Engram server to call instead (default ${ServerVariable}); its API key from ${HttpMemoryClient.ApiKeyVariable}.",
        HelpName = "URL",
    };

    public Option<string?> Store { get; } = StoreOption.Create();

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print the JSON the REST API returns (one document) instead of text.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Data);
        command.Options.Add(Server);
        command.Options.Add(Store);
        command.Options.Add(Json);
    }

    /// <summary>
    /// Picks the backend. Flags beat environment variables; an explicit <c>--data</c> beats
    /// ENGRAM_SERVER so one can inspect a folder without unsetting it.
    /// </summary>
    /// <param name="parse">The command line.</param>
    /// <param name="createData">Whether a data folder without a store may be created.</param>
    /// <param name="tenant">A tenant to act in (a command's <c>--tenant</c>), or null for the default one (the key's own over --server).</param>
    public IMemoryClient Connect(ParseResult parse, bool createData, string? tenant = null)
    {
        var data = parse.GetValue(Data);
        var server = parse.GetValue(Server);
        var store = parse.GetValue(Store);
        if ((data ?? store) is not null && server is not null)
        {
            throw new ValidationException("--server", $"give {(data is null ? "--store" : "--data")} or --server, not both");
        }
        server ??= data is null && store is null ? Environment(ServerVariable) : null;
        if (server is not null)
        {
            return new HttpMemoryClient(ServerUri(server), tenant);
        }
        return InProcessMemoryClient.Open(StoreOption.Resolve(store, data), createData, tenant);
    }

    private static string? Environment(string name) =>
        System.Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    internal static Uri ServerUri(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ValidationException("--server", $"--server must be an http:// or https:// URL, e.g. http://127.0.0.1:7070 (got '{text}')");
        }
        // A base path (a server behind a reverse proxy at /engram) must end in '/' for relative paths to stay under it.
        return uri.AbsolutePath.EndsWith('/') ? uri : new Uri(uri + "/");
    }
}
