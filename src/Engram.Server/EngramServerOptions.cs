using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.KeyValue;
using Engram.Core.Search;
using Engram.Core.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Engram.Server;

/// <summary>
/// Everything the host needs, bound from the <c>Engram</c> configuration section
/// (appsettings.json, <c>Engram__X</c> environment variables, ENGRAM_DATA) and overridden by CLI flags.
/// </summary>
public sealed class EngramServerOptions
{
    public const string Section = "Engram";
    public const string DefaultUrls = "http://127.0.0.1:7070";

    /// <summary>The data folder holding engram.db. Default <c>./data</c>.</summary>
    public string DataPath { get; set; } = "data";

    public MemoryLimits Limits { get; set; } = new();

    public SearchOptions Search { get; set; } = new();

    public EmbeddingSettings Embeddings { get; set; } = new();

    /// <summary>Key-value state: value size limit, default TTL (MEMORY_DEFAULT_TTL_SECONDS), list and batch limits.</summary>
    public KvOptions KeyValue { get; set; } = new();

    /// <summary>API keys and the audit log: OpenMetrics, AuditMaxRows, KeyCacheSize.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>Save the indexes next to the store (engram.index) for a fast start.</summary>
    public bool IndexSnapshots { get; set; } = true;

    /// <summary>How often the snapshot is rewritten while the index changes (also on shutdown).</summary>
    public int SnapshotIntervalSeconds { get; set; } = 600;

    /// <summary>How often the TTL sweeper deletes expired memories.</summary>
    public int SweepIntervalSeconds { get; set; } = 60;

    /// <summary>
    /// Binds the <c>Engram</c> section of <paramref name="configuration"/>. A value of the wrong type
    /// (MEMORY_DEFAULT_TTL_SECONDS=soon, Durability=Fast) is the operator's to fix, so it becomes an
    /// <see cref="OptionsValidationException"/> naming the setting, not a binder stack trace.
    /// </summary>
    public static EngramServerOptions Bind(IConfiguration configuration)
    {
        var options = new EngramServerOptions();
        try
        {
            configuration.GetSection(Section).Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            throw new OptionsValidationException(Section, typeof(EngramServerOptions), [ex.Message + " " + ex.InnerException?.Message]);
        }
        return options;
    }

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(DataPath))
        {
            yield return "Engram:DataPath (ENGRAM_DATA, --data) must name a folder";
        }
        if (SnapshotIntervalSeconds < 1)
        {
            yield return "Engram:SnapshotIntervalSeconds must be at least 1";
        }
        if (SweepIntervalSeconds < 1)
        {
            yield return "Engram:SweepIntervalSeconds must be at least 1";
        }
        foreach (var error in Limits.Validate().Concat(Search.Validate()).Concat(KeyValue.Validate()).Concat(Embeddings.Validate()).Concat(Auth.Validate()))
        {
            yield return error;
        }
    }
}
