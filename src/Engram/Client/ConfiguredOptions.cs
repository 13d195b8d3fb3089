using Engram.Core.Common;
using Engram.Core.Storage.Transfer;
using Engram.Server;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Engram.Cli.Client;

/// <summary>
/// Engram's settings for the in-process backend and the CLI's own commands, read from the sources the
/// server reads (appsettings.json next to the executable, <c>Engram__*</c> variables and the operator
/// names such as MEMORY_DEFAULT_TTL_SECONDS or SEMANTIC_WEIGHT), so a setting made for
/// <c>engram serve</c> holds for <c>engram add --data</c> too.
/// </summary>
internal static class ConfiguredOptions
{
    /// <summary>Every Engram setting, validated (limits, search, the embedder, key-value).</summary>
    public static EngramServerOptions Load()
    {
        var configuration = Configuration();
        EngramServerOptions options;
        try
        {
            options = EngramServerOptions.Bind(configuration);
        }
        catch (OptionsValidationException ex)
        {
            throw new ValidationException("Engram", "invalid configuration: " + string.Join("; ", ex.Failures));
        }
        var errors = options.Validate().Where(e => !e.StartsWith("Engram:DataPath", StringComparison.Ordinal)).ToList();
        return errors.Count == 0
            ? options
            : throw new ValidationException("Engram", "invalid configuration: " + string.Join("; ", errors));
    }

    /// <summary>
    /// READONLY_MODE (Engram:ReadOnly) for the commands that write into a store below the services (import, restore,
    /// migrate) or in bulk (prune, reflect): refused up front, as <c>engram add --data</c> is, before anything is opened.
    /// </summary>
    public static void RefuseIfReadOnly(string action)
    {
        if (Load().ReadOnly)
        {
            throw new Core.Operations.WritesRefusedException(Core.Operations.WriteRefusal.ReadOnly,
                $"read-only mode is on (READONLY_MODE / Engram:ReadOnly): cannot {action}; unset it to write");
        }
    }

    /// <summary>
    /// The write paths' rules under the configured limits (<c>Engram:Limits</c>, <c>Engram:KeyValue:MaxValueBytes</c>), for
    /// what reads records into a store (import, restore, migrate): a record the API here would refuse is refused.
    /// </summary>
    public static ImportValidation ImportValidation()
    {
        var options = Load();
        return new ImportValidation(options.Limits, options.KeyValue.MaxValueBytes);
    }

    /// <summary>The configuration the CLI reads: appsettings.json beside the binary, then the environment (operator names mapped).</summary>
    public static IConfiguration Configuration()
    {
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .Build();
        ServerApplication.MapOperatorVariables(configuration);
        return configuration;
    }
}
