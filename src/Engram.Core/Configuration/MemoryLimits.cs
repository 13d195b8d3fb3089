namespace Engram.Core.Configuration;

/// <summary>Input limits of the write path (configuration section <c>Engram:Limits</c>). Defaults are documented in docs/CONFIGURATION.md.</summary>
public sealed class MemoryLimits
{
    public int MaxContentChars { get; set; } = 32_768;

    public int MaxMetadataBytes { get; set; } = 16 * 1024;

    public int MaxTags { get; set; } = 64;

    public int MaxTagChars { get; set; } = 64;

    public int MaxEntities { get; set; } = 64;

    /// <summary>Characters per entity name (after trimming).</summary>
    public int MaxEntityChars { get; set; } = 256;

    public int MaxBatchItems { get; set; } = 1_000;

    public int DefaultListLimit { get; set; } = 50;

    public int MaxListLimit { get; set; } = 1_000;

    /// <summary>Scope fields, type and source.</summary>
    public int MaxFieldChars { get; set; } = 256;

    public IEnumerable<string> Validate()
    {
        if (MaxContentChars < 1)
        {
            yield return "Engram:Limits:MaxContentChars must be at least 1";
        }
        if (MaxMetadataBytes < 2)
        {
            yield return "Engram:Limits:MaxMetadataBytes must be at least 2 (an empty object)";
        }
        if (MaxTags < 0 || MaxTagChars < 1)
        {
            yield return "Engram:Limits:MaxTags must be >= 0 and MaxTagChars >= 1";
        }
        if (MaxEntities < 0 || MaxEntityChars < 1)
        {
            yield return "Engram:Limits:MaxEntities must be >= 0 and MaxEntityChars >= 1";
        }
        if (MaxBatchItems < 1)
        {
            yield return "Engram:Limits:MaxBatchItems must be at least 1";
        }
        if (DefaultListLimit < 1 || MaxListLimit < DefaultListLimit)
        {
            yield return "Engram:Limits:DefaultListLimit must be >= 1 and <= MaxListLimit";
        }
        if (MaxFieldChars < 1)
        {
            yield return "Engram:Limits:MaxFieldChars must be at least 1";
        }
    }
}
