using System.CommandLine;
using Engram.Cli.Client;

namespace Engram.Cli.Commands;

/// <summary>
/// What a memory command's action works with. The backend is connected on first use, so a command
/// checks its own input first and a typo never waits for (or creates) a store.
/// </summary>
internal sealed class CommandContext(ParseResult parse, BackendOptions backend, bool createsData) : IAsyncDisposable
{
    private IMemoryClient? _client;

    public ParseResult Parse { get; } = parse;

    public bool Json => Parse.GetValue(backend.Json);

    /// <summary>The <c>--data</c>, <c>--server</c> and <c>--store</c> flags as given (commands that work on the store itself).</summary>
    public (string? Data, string? Server, string? Store) BackendFlags => (Parse.GetValue(backend.Data), Parse.GetValue(backend.Server), Parse.GetValue(backend.Store));

    public TextWriter Output { get; } = Console.Out;

    public IMemoryClient Client => _client ??= backend.Connect(Parse, createsData, Tenant);

    /// <summary>The tenant to act in when the command takes <c>--tenant</c>; set it before the first use of <see cref="Client"/>.</summary>
    public string? Tenant { get; set; }

    public CancellationToken CancellationToken { get; init; }

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T? Get<T>(Argument<T> argument) => Parse.GetValue(argument);

    public ValueTask DisposeAsync() => _client?.DisposeAsync() ?? ValueTask.CompletedTask;
}
