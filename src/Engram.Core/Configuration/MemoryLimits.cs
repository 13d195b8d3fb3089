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

    /// <summary>A page of a memory listing: <paramref name="pageSize"/> if it is 1..<see cref="MaxListLimit"/>, else a validation error naming limit.</summary>
    public int CheckListLimit(int pageSize) => pageSize >= 1 && pageSize <= MaxListLimit
        ? pageSize
        : throw new Common.ValidationException("limit", $"limit must be between 1 and {MaxListLimit} (got {pageSize})");

    /// <summary>Scope fields, type and source.</summary>
    public int MaxFieldChars { get; set; } = 256;

    /// <summary>
    /// Values one filter list may hold: tags, types and tiers of a listing, bulk delete or search, and the
    /// metadata keys of one filter. Each becomes a condition of one SQL statement, whose size SQLite bounds.
    /// </summary>
    public int MaxFilterValues { get; set; } = 100;

    /// <summary>
    /// Largest body of a single-memory request (create, update, search), in bytes; 0 (default) derives it
    /// from the limits above, counting 12 bytes per character (an emoji as two \uXXXX escapes), with a floor of 64 KiB.
    /// </summary>
    public int MaxRequestBodyBytes { get; set; }

    /// <summary>Largest body of a batch request (memories/batch, kv mset and mget, graph calls), in bytes. Default 16 MiB.</summary>
    public int MaxBatchRequestBodyBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>The single-memory body bound: <see cref="MaxRequestBodyBytes"/>, or derived from the field limits.</summary>
    public long SingleRequestBodyBytes()
    {
        if (MaxRequestBodyBytes > 0)
        {
            return MaxRequestBodyBytes;
        }
        // A character may arrive as \uXXXX escapes (Python's json.dumps writes non-ASCII so): one, or two for a character
        // outside the Basic Multilingual Plane (an emoji), which counts as one character.
        const long perChar = 12;
        var strings = (long)MaxContentChars + (long)MaxTags * MaxTagChars + (long)MaxEntities * MaxEntityChars + 8L * MaxFieldChars;
        return Math.Max(MinRequestBodyBytes, (strings * perChar) + MaxMetadataBytes + 4096);
    }

    /// <summary>The floor of derived body bounds, and the bound of small bodies (incr, expire, cleanup).</summary>
    public const int MinRequestBodyBytes = 64 * 1024;

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
        if (MaxFilterValues is < 1 or > 500)
        {
            yield return "Engram:Limits:MaxFilterValues must be between 1 and 500";
        }
        if (MaxRequestBodyBytes < 0)
        {
            yield return "Engram:Limits:MaxRequestBodyBytes must be 0 (derived from the other limits) or a number of bytes";
        }
        if (MaxBatchRequestBodyBytes < 1024)
        {
            yield return "Engram:Limits:MaxBatchRequestBodyBytes must be at least 1024";
        }
    }
}
