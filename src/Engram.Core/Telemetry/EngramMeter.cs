using System.Diagnostics.Metrics;
using System.Reflection;

namespace Engram.Core.Telemetry;

/// <summary>
/// The one <see cref="Meter"/> every Engram instrument hangs off; the server's Prometheus exporter listens to it
/// by <see cref="Name"/> beside ASP.NET Core's and the runtime's meters.
/// </summary>
/// <remarks>
/// Naming: an instrument's name is the final Prometheus name, with no unit set, so what an operator reads in
/// <c>/metrics</c>, the alert rules and the dashboard is exactly the string in the code: <c>engram_…_seconds</c>,
/// <c>engram_…_bytes</c>, counters ending in <c>_total</c>. Grep for the name and you find the instrument.
/// </remarks>
public static class EngramMeter
{
    /// <summary>The meter's name, as given to the exporter.</summary>
    public const string Name = "Engram";

    /// <summary>The shared meter. Instruments are created once (static fields or singletons), never per request.</summary>
    public static readonly Meter Meter = new(Name,
        typeof(EngramMeter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]);
}
