using Engram.Core.Storage;

namespace Engram.Core.KeyValue;

/// <summary>
/// Limits and defaults of key-value state (configuration section <c>Engram:KeyValue</c>;
/// MEMORY_DEFAULT_TTL_SECONDS sets <see cref="DefaultTtlSeconds"/>).
/// </summary>
public sealed class KvOptions
{
    /// <summary>Keys are at most this many UTF-8 bytes as the caller writes them (before the tenant is inserted).</summary>
    public const int MaxKeyBytes = 512;

    /// <summary>Ten years: far beyond any cache lifetime, and far from overflowing millisecond timestamps.</summary>
    public const long MaxTtlSeconds = 10L * 366 * 24 * 3600;

    /// <summary>The largest value, in UTF-8 bytes of its JSON text. Default 1 MB.</summary>
    public int MaxValueBytes { get; set; } = 1024 * 1024;

    /// <summary>The TTL of an entry written without one; 0 means entries never expire unless told to.</summary>
    public long DefaultTtlSeconds { get; set; } = 86_400;

    public int DefaultListLimit { get; set; } = 100;

    public int MaxListLimit { get; set; } = 1_000;

    /// <summary>
    /// When a key-value write is acknowledged. <see cref="WriteDurability.Full"/> (default): after an
    /// fsync, like memories. <see cref="WriteDurability.Relaxed"/>: once the commit reaches the
    /// operating system — a crash of Engram loses nothing, a power loss may lose the last writes;
    /// several times the write throughput, for state that is cheap to rebuild (what Redis without
    /// <c>appendfsync always</c> offers). Memories and the graph are always written with Full.
    /// </summary>
    public WriteDurability Durability { get; set; } = WriteDurability.Full;

    /// <summary>
    /// History entries older than this many days are pruned by the background sweeper (a live key keeps
    /// at least its newest entry); 0 keeps history forever. Every SET adds a history row holding the
    /// value, so a busy key space would otherwise grow the store without bound. Default 7.
    /// </summary>
    public double HistoryRetentionDays { get; set; } = 7;

    /// <summary>
    /// How long one cleanup call deletes before it answers with a cursor to continue (milliseconds; the
    /// chunk of 500 keys under way finishes first, and every call deletes at least one). Default 1000.
    /// </summary>
    public int CleanupBudgetMs { get; set; } = 1_000;

    /// <summary>
    /// Megabytes (estimated) of key states the SQLite store keeps in memory, so that reads and writes of them need no
    /// query: states written or read recently, and keys found missing. Past the bound some are dropped (the table has
    /// them); states waiting to be written to the table are not counted out. 0 keeps only those. Default 128.
    /// </summary>
    public int CacheMB { get; set; } = (int)(Storage.Sqlite.SqliteKvWriteBehind.DefaultCacheBytes / (1024 * 1024));

    /// <summary>The most keys one mget or mset may name.</summary>
    public int MaxBatchItems { get; set; } = 1_000;

    public IEnumerable<string> Validate()
    {
        if (MaxValueBytes < 4)
        {
            yield return "Engram:KeyValue:MaxValueBytes must be at least 4 (the JSON null)";
        }
        if (DefaultTtlSeconds < 0 || DefaultTtlSeconds > MaxTtlSeconds)
        {
            yield return $"Engram:KeyValue:DefaultTtlSeconds (MEMORY_DEFAULT_TTL_SECONDS) must be between 0 (no expiry) and {MaxTtlSeconds}";
        }
        if (DefaultListLimit < 1 || MaxListLimit < DefaultListLimit)
        {
            yield return "Engram:KeyValue:DefaultListLimit must be >= 1 and <= MaxListLimit";
        }
        if (HistoryRetentionDays < 0 || HistoryRetentionDays > 36_600)
        {
            yield return "Engram:KeyValue:HistoryRetentionDays must be between 0 (keep forever) and 36600";
        }
        if (CleanupBudgetMs < 0 || CleanupBudgetMs > 60_000)
        {
            yield return "Engram:KeyValue:CleanupBudgetMs must be between 0 (one chunk per call) and 60000";
        }
        if (CacheMB < 0 || CacheMB > 1024 * 1024)
        {
            yield return "Engram:KeyValue:CacheMB must be between 0 (only key states waiting to be written) and 1048576";
        }
        if (MaxBatchItems < 1)
        {
            yield return "Engram:KeyValue:MaxBatchItems must be at least 1";
        }
    }
}
