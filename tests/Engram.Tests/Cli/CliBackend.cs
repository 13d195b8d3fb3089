using Engram.Tests.Support;

namespace Engram.Tests.Cli;

public enum CliMode
{
    /// <summary><c>--data DIR</c>: the CLI opens the store itself.</summary>
    InProcess,

    /// <summary><c>--server URL</c>: the CLI calls a real server's REST API.</summary>
    Server,

    /// <summary><c>--store postgres://…</c>: the CLI opens a fresh PostgreSQL database itself.</summary>
    InProcessPostgres,

    /// <summary><c>--server URL</c> of a server whose store is a fresh PostgreSQL database.</summary>
    ServerPostgres,
}

/// <summary>
/// A fresh Engram for one test, reached the way <paramref name="Mode"/> says: every run gets the
/// matching <c>--data</c> or <c>--server</c> appended, so one test body checks both backends.
/// </summary>
public sealed class CliBackend : IAsyncDisposable
{
    private readonly StoreLocation? _data;
    private readonly EngramServer? _server;

    private CliBackend(CliMode mode, StoreLocation? data, EngramServer? server)
    {
        Mode = mode;
        _data = data;
        _server = server;
    }

    public CliMode Mode { get; }

    public string[] BackendArgs => Mode switch
    {
        CliMode.InProcess => ["--data", _data!.Value],
        CliMode.InProcessPostgres => ["--store", _data!.Value],
        _ => ["--server", _server!.BaseAddress.ToString()],
    };

    public static async Task<CliBackend> StartAsync(CliMode mode) => mode switch
    {
        CliMode.InProcess => new CliBackend(mode, await StoreLocation.CreateAsync(Backend.Sqlite), null),
        CliMode.InProcessPostgres => new CliBackend(mode, await StoreLocation.CreateAsync(Backend.Postgres), null),
        CliMode.ServerPostgres => new CliBackend(mode, null, await EngramServer.StartAsync(Backend.Postgres)),
        _ => new CliBackend(mode, null, await EngramServer.StartAsync()),
    };

    public Task<CliResult> RunAsync(params string[] args) => CliProcess.RunAsync([.. args, .. BackendArgs]);

    public Task<CliResult> RunWithStdinAsync(string stdin, params string[] args) => CliProcess.RunAsync([.. args, .. BackendArgs], stdin);

    /// <summary>Runs and asserts exit 0; returns the parsed <c>--json</c> output.</summary>
    public async Task<System.Text.Json.JsonElement> JsonAsync(params string[] args)
    {
        var result = await RunAsync([.. args, "--json"]);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Stderr.Should().BeEmpty();
        return result.Json();
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _data?.Dispose();
    }
}
