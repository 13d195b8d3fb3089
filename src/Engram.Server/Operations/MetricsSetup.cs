using System.Diagnostics.Metrics;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Core.Telemetry;
using Engram.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Engram.Server.Operations;

/// <summary>
/// <c>GET /metrics</c>: the Prometheus text format, written by OpenTelemetry's Prometheus exporter from
/// Engram's meter and the built-in meters of ASP.NET Core (request duration, active requests), Kestrel
/// (connections) and the runtime (GC, heap, thread pool, exceptions). docs/ARCHITECTURE.md says why this
/// exporter; docs/OPERATIONS.md lists the metrics.
/// </summary>
internal static class MetricsSetup
{
    public const string Path = "/metrics";

    /// <summary>The meters exported beside <see cref="EngramMeter.Name"/>.</summary>
    public static readonly string[] BuiltInMeters =
    [
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Diagnostics",
        "System.Runtime",
    ];

    public static IServiceCollection AddEngramMetrics(this IServiceCollection services)
    {
        services.AddSingleton<EngramGauges>();
        var host = new HostMeters();
        services.AddSingleton(host);
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(EngramMeter.Name)
            .AddMeter(BuiltInMeters)
            // ASP.NET Core creates its meters through the host's IMeterFactory, under the same names in every
            // host: this host exports its own only. (Several hosts in one process, the tests, would otherwise
            // share one stream, which OpenTelemetry ends when the first host stops. Kestrel's meter still is
            // shared that way, so the metrics tests run alone.)
            .AddView(instrument => host.IsForeign(instrument.Meter) ? MetricStreamConfiguration.Drop : null)
            // Three runtime gauges end in .count, which Prometheus keeps for a histogram's count (promtool lints them).
            .AddView("dotnet.assembly.count", "dotnet.assembly.loaded")
            .AddView("dotnet.process.cpu.count", "dotnet.process.cpus")
            .AddView("dotnet.timer.count", "dotnet.timers")
            .AddPrometheusExporter(prometheus =>
            {
                // Each scrape reads the instruments afresh (they are cheap: cached counts, counters).
                prometheus.ScrapeResponseCacheDurationMilliseconds = 0;
            }));
        return services;
    }

    /// <summary>Admin only, unless Engram:Auth:OpenMetrics lets scrapers in without a key (see <see cref="AuthenticationGate"/>).</summary>
    public static IEndpointRouteBuilder MapEngramMetrics(this IEndpointRouteBuilder app)
    {
        // Like every route, unknown query parameters are refused (a 400 problem body from ProblemMiddleware).
        app.MapPrometheusScrapingEndpoint(Path, meterProvider: null, configureBranchedPipeline: branch => branch.Use(next => context =>
        {
            QueryParser.RefuseAllExcept(context.Request.Query);
            if (context.GetCaller() is { IsScoped: true })
            {
                throw new ForbiddenException("a scoped key may not read the metrics (they count the whole server)");
            }
            return next(context);
        }), optionsName: null).WithMetadata(new HttpMethodMetadata([HttpMethods.Get])).WithName("Metrics").WithTags("system").Requires(Role.Admin)
            .WithSummary("Prometheus text format: Engram's metrics and the built-in ASP.NET Core, Kestrel and runtime meters.");
        // The gauges read the engine from here on (and stop with the server: the container disposes them).
        // The provider first (knowing this host's meter factory), so the gauges' zero counts reach a listening exporter.
        app.ServiceProvider.GetRequiredService<HostMeters>().Factory = app.ServiceProvider.GetRequiredService<IMeterFactory>();
        app.ServiceProvider.GetRequiredService<MeterProvider>();
        app.ServiceProvider.GetRequiredService<EngramGauges>();
        return app;
    }

    /// <summary>The meter factory of this host, once known; meters of another host's factory are foreign.</summary>
    internal sealed class HostMeters
    {
        public IMeterFactory? Factory { get; set; }

        public bool IsForeign(Meter meter) => Factory is not null && meter.Scope is IMeterFactory scope && !ReferenceEquals(scope, Factory);
    }
}
