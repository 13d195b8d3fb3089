using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Server;
using Microsoft.Extensions.Configuration;

namespace Engram.Cli.Client;

/// <summary>
/// The write path's limits for the in-process backend, read from the sources the server reads
/// (appsettings.json next to the executable, <c>Engram__Limits__*</c> environment variables), so a
/// limit raised or lowered for <c>engram serve</c> holds for <c>engram add --data</c> too.
/// </summary>
internal static class ConfiguredLimits
{
    public static MemoryLimits Load() => LoadOptions().Limits;

    /// <summary>Every Engram setting, validated (limits, search defaults, the embedder).</summary>
    public static EngramServerOptions LoadOptions()
    {
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .Build();
        var options = new EngramServerOptions();
        configuration.GetSection(EngramServerOptions.Section).Bind(options);
        var errors = options.Validate().Where(e => !e.StartsWith("Engram:DataPath", StringComparison.Ordinal)).ToList();
        return errors.Count == 0
            ? options
            : throw new ValidationException("Engram", "invalid configuration: " + string.Join("; ", errors));
    }
}
