using System.Globalization;
using Engram.Core;
using Engram.Core.Storage.Sqlite;
using Engram.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Engram.Server;

/// <summary>
/// What the server says when it starts: one entry naming the data folder, the store, the embedder,
/// the addresses and whether authentication is on, in place of ASP.NET Core's lifetime lines (whose
/// "Content root path" is the build output folder, which tells an operator nothing).
/// </summary>
internal static class StartupLog
{
    public const string Category = "Engram.Server";

    /// <summary>
    /// Quiets the framework's start-up lines. The host's own "Hosting failed to start" entry (a full
    /// stack trace) is held back until the server has started: whoever calls StartAsync gets the
    /// exception, and <c>engram serve</c> turns it into one line (a busy port, a locked folder).
    /// </summary>
    public static void Configure(ILoggingBuilder logging, StartedFlag started)
    {
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", level => level >= LogLevel.Warning && (started.Value || level < LogLevel.Error));
    }

    /// <summary>Logs the summary once Kestrel listens (the addresses are the bound ones, so port 0 shows its real port).</summary>
    public static void ReportWhenStarted(WebApplication app, EngramServerOptions options, StartedFlag started)
    {
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            started.Value = true;
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(Category);
            logger.LogInformation(1, "{Summary}", Describe(app, options));
        });
    }

    /// <summary>Warns of each setting that binds to nothing (<see cref="UnknownSettings"/>): the binder would ignore it in silence.</summary>
    public static void ReportUnknownSettings(WebApplication app, IReadOnlyList<string> unknown)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(Category);
        foreach (var setting in unknown)
        {
            logger.LogWarning(2, "Ignored setting {Setting}; docs/CONFIGURATION.md lists every setting", setting);
        }
    }

    private static string Describe(WebApplication app, EngramServerOptions options)
    {
        var engine = app.Services.GetRequiredService<EngramEngine>();
        var data = Path.GetFullPath(options.DataPath);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var embedder = engine.Embedder;
        var dimensions = embedder.Dimensions > 0 ? string.Create(CultureInfo.InvariantCulture, $", {embedder.Dimensions} dimensions") : "";
        return string.Join(Environment.NewLine,
            $"Engram {SystemEndpoints.Version} is serving",
            $"  data:      {data}",
            Core.Storage.StoreFactory.IsPostgres(options.StoreLocation)
                ? $"  store:     {engine.Store.Kind}, {Core.Storage.StoreFactory.Describe(options.StoreLocation)}; index snapshot {engine.SnapshotPath ?? "off"}"
                : $"  store:     {engine.Store.Kind}, file {Path.Combine(data, SqliteMemoryStore.FileName)}; index snapshots {(options.IndexSnapshots ? "on" : "off")}",
            $"  embedder:  {options.Embeddings.Provider}, model {embedder.ModelId}{dimensions}",
            $"  listening: {string.Join(", ", addresses)}" + (options.Resp.Enabled ? $"; Redis protocol (RESP) on {RespAddress(app, options)}" : ""),
            AuthLine(app.Services.GetRequiredService<Core.Security.ApiKeyService>(), options),
            "Press Ctrl+C to stop.");
    }

    /// <summary>The RESP address bound (port 0 shows the port the system picked), else the configured one.</summary>
    private static string RespAddress(WebApplication app, EngramServerOptions options) =>
        app.Services.GetService<Resp.RespListener>()?.BoundEndPoint?.ToString()
            ?? options.Resp.Listen!.Trim();

    private static string AuthLine(Core.Security.ApiKeyService keys, EngramServerOptions options) => keys.HasActiveKeys
        ? $"  auth:      API keys, {keys.ActiveKeys} active: every route but /health/live and /health/ready needs one"
        : "  auth:      open (no API keys): serving loopback only, every request acts as admin of tenant default; " +
          $"create a key with: engram keys create {(Core.Storage.StoreFactory.IsPostgres(options.StoreLocation) ? "--store URL" : "--data " + options.DataPath)} --tenant default --role admin";

    /// <summary>Set once the host has started; read by the log filter on every host log call.</summary>
    public sealed class StartedFlag
    {
        private volatile bool _value;

        public bool Value
        {
            get => _value;
            set => _value = value;
        }
    }
}
