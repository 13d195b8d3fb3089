using System.Globalization;

namespace Engram.Server.Operations;

/// <summary>
/// The process's RAM budget: ENGRAM_MEMORY_BUDGET_MB when set, else the cgroup memory limit (v2
/// <c>/sys/fs/cgroup/memory.max</c>, v1 <c>memory/memory.limit_in_bytes</c>), else half the machine's RAM.
/// Every in-process cache or queue that grows with traffic has a hard bound; those that grow with the number of
/// clients, keys or queries are also capped at <see cref="CacheShare"/> of the budget each (<see cref="CapCaches"/>,
/// <see cref="AccessCounts"/>): query vectors, API keys, pending access counts, rate-limit clients and
/// failed-authentication addresses; the key-value states kept in memory at <see cref="KvCacheShare"/>. The rest have
/// small constant bounds (the store's write queue, the key-value write-behind, the audit queue, the webhook queue). The indexes are not bounded: they are the data, and what the
/// budget watches. docs/OPERATIONS.md lists every part with its bound and what happens when it is full.
/// </summary>
public sealed record MemoryBudget(long Bytes, string Source)
{
    private const long MB = 1024 * 1024;

    /// <summary>Share of the budget each sized cache may hold at most (1 %).</summary>
    public const double CacheShare = 0.01;

    /// <summary>Resolves the budget from <paramref name="budgetMB"/> (0: automatic).</summary>
    public static MemoryBudget Resolve(int budgetMB)
    {
        if (budgetMB > 0)
        {
            return new MemoryBudget(budgetMB * MB, "ENGRAM_MEMORY_BUDGET_MB");
        }
        var machine = MachineMemory();
        if (CgroupLimit() is { } limit && limit < machine)
        {
            return new MemoryBudget(limit, "the cgroup memory limit");
        }
        return new MemoryBudget(machine / 2, "half the machine's RAM");
    }

    /// <summary>The cgroup (v2, else v1) memory limit in bytes, or null when there is none.</summary>
    public static long? CgroupLimit()
    {
        foreach (var path in new[] { "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes" })
        {
            try
            {
                if (File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit > 0)
                {
                    return limit; // "max" (v2) does not parse: no limit; v1's "no limit" is a huge number, above the machine's RAM
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
            }
        }
        return null;
    }

    /// <summary>The machine's RAM (MemTotal on Linux), else what the GC sees as available.</summary>
    public static long MachineMemory()
    {
        try
        {
            foreach (var line in File.Exists("/proc/meminfo") ? File.ReadLines("/proc/meminfo") : [])
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)
                    && long.TryParse(line["MemTotal:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var kb))
                {
                    return kb * 1024;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>
    /// Lowers the configured cache sizes so each stays within <see cref="CacheShare"/> of the budget (never raises
    /// them): a query vector costs about dimensions × 4 bytes plus the query text (~4 KB at 768 dimensions, taken as
    /// the bound), a cached API key about 1 KB.
    /// </summary>
    public void CapCaches(EngramServerOptions options)
    {
        var share = (long)(Bytes * CacheShare);
        if (options.Search.QueryCacheSize > 0)
        {
            options.Search.QueryCacheSize = (int)Math.Min(options.Search.QueryCacheSize, Math.Max(16, share / QueryVectorBytes));
        }
        options.Auth.KeyCacheSize = (int)Math.Min(options.Auth.KeyCacheSize, Math.Max(16, share / ApiKeyBytes));
        options.RateLimit.MaxClients = (int)Math.Min(options.RateLimit.MaxClients, Math.Max(MinClients, share / BoundedKeySet<string>.EntryBytes));
        options.KeyValue.CacheMB = (int)Math.Min(options.KeyValue.CacheMB, (long)(Bytes * KvCacheShare) / MB);
    }

    /// <summary>
    /// Share of the budget the key-value states kept in memory may hold at most (10 %): more than a sized cache's 1 %,
    /// because they are the key-value data itself, which a Redis client expects to be read from memory.
    /// </summary>
    public const double KvCacheShare = 0.10;

    /// <summary>Never fewer callers with limits of their own than this, however small the budget (1 MB at ~1 KB each).</summary>
    public const int MinClients = 1024;

    /// <summary>
    /// The bound on memories whose access counts wait for the next flush: <see cref="Core.Search.AccessTracker.MaxPending"/>,
    /// or fewer so they stay within <see cref="CacheShare"/> of the budget (at least 1,024).
    /// </summary>
    public int AccessCounts() =>
        (int)Math.Min(Core.Search.AccessTracker.MaxPending, Math.Max(1024, (long)(Bytes * CacheShare) / Core.Search.AccessTracker.EntryBytes));

    /// <summary>The estimate of one query-vector cache entry used for sizing and reporting.</summary>
    public const long QueryVectorBytes = 4096;

    /// <summary>The estimate of one cached API key used for sizing and reporting.</summary>
    public const long ApiKeyBytes = 1024;
}
