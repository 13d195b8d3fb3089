using Engram.Cli.Client;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;

namespace Engram.Cli.Mcp;

/// <summary>
/// Opens the engine behind <c>engram mcp</c>, as the DI factory of <see cref="EngramEngine"/>: on first use
/// (a tool call, or the background jobs once the handshake is done), never before the handshake; the
/// container keeps the engine and disposes it on exit. A folder that cannot serve (a file where the folder
/// should be, a schema newer than this binary, an unreadable file) or a bad configuration becomes one
/// clear message: every tool call answers it as a tool error, and stderr gets it once. A failed open is
/// not kept, so the next call tries again and fixing the folder needs no restart.
/// </summary>
internal sealed partial class StdioEngine(string dataPath, ILogger<StdioEngine> logger)
{
    private readonly Lock _gate = new();
    private EngramServerOptions? _options;
    private string? _lastFailure;

    /// <summary>The data folder, or the PostgreSQL URL (StoreFactory tells them apart).</summary>
    public string DataPath { get; } = Core.Storage.StoreFactory.IsPostgres(dataPath) ? dataPath : Path.GetFullPath(dataPath);

    /// <summary>The settings (appsettings.json, Engram__* and the operator variables), as for every in-process command.</summary>
    public EngramServerOptions Options
    {
        get
        {
            lock (_gate)
            {
                return _options ??= Describe(ConfiguredOptions.Load);
            }
        }
    }

    public EngramEngine Open()
    {
        var options = Options;
        var postgres = Core.Storage.StoreFactory.IsPostgres(DataPath);
        var engine = Describe(() => new EngramEngine(Core.Storage.StoreFactory.Open(DataPath, TimeProvider.System), options.Limits, options.Search,
            options.Embeddings.CreateProvider(options.Outbound), TimeProvider.System,
            SnapshotFile(options, postgres), options.KeyValue));
        engine.Gate.ReadOnly = options.ReadOnly; // READONLY_MODE holds for the stdio MCP server too
        return engine;
    }

    /// <summary>
    /// The data folder's snapshot for SQLite; for PostgreSQL (no data folder here) only the one
    /// Engram:IndexSnapshotPath names, else none.
    /// </summary>
    private string? SnapshotFile(EngramServerOptions options, bool postgres) => !options.IndexSnapshots
        ? null
        : !postgres
            ? Path.Combine(DataPath, IndexSnapshot.FileName)
            : string.IsNullOrWhiteSpace(options.IndexSnapshotPath) ? null : Path.GetFullPath(options.IndexSnapshotPath);

    /// <summary>Runs <paramref name="open"/>; a failure the user must fix becomes an <see cref="McpException"/> with the reason.</summary>
    private T Describe<T>(Func<T> open)
    {
        try
        {
            return open();
        }
        catch (ValidationException ex)
        {
            throw Fail($"engram mcp cannot start: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is StoreException or IOException or UnauthorizedAccessException)
        {
            throw Fail(Core.Storage.StoreFactory.IsPostgres(DataPath)
                ? $"engram mcp cannot open the store '{Core.Storage.StoreFactory.Describe(DataPath)}': {ex.Message}"
                : $"engram mcp cannot open the data folder '{DataPath}': {ex.Message}", ex);
        }
    }

    private McpException Fail(string message, Exception cause)
    {
        lock (_gate)
        {
            if (message != _lastFailure)
            {
                _lastFailure = message;
                LogUnavailable(logger, message);
            }
        }
        return new McpException(message, cause);
    }

    [LoggerMessage(EventId = 4100, Level = LogLevel.Error, Message = "{Message}")]
    private static partial void LogUnavailable(ILogger logger, string message);
}
