namespace Engram.Server.Operations;

/// <summary>The memory budget (<c>Engram:Memory</c>): ENGRAM_MEMORY_BUDGET_MB and the 85 % warning's webhook.</summary>
public sealed class MemoryBudgetOptions
{
    /// <summary>The process's RAM budget in MB; 0 (default): the cgroup memory limit, else half the machine's RAM.</summary>
    public int BudgetMB { get; set; }

    /// <summary>A URL the monitor POSTs a small JSON note to when memory use crosses 85 % (and 95 %); none by default.</summary>
    public string? WarningWebhook { get; set; }

    /// <summary>How often the working set is sampled.</summary>
    public int SampleIntervalMilliseconds { get; set; } = 2000;

    public IEnumerable<string> Validate()
    {
        if (BudgetMB < 0)
        {
            yield return "Engram:Memory:BudgetMB (ENGRAM_MEMORY_BUDGET_MB) must be 0 (automatic) or a size in MB";
        }
        if (SampleIntervalMilliseconds is < 100 or > 60_000)
        {
            yield return "Engram:Memory:SampleIntervalMilliseconds must be between 100 and 60000";
        }
        if (WarningWebhook is { Length: > 0 } hook && (!Uri.TryCreate(hook, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            yield return $"Engram:Memory:WarningWebhook must be an http:// or https:// URL (got '{hook}')";
        }
    }
}

/// <summary>Readiness thresholds (<c>Engram:Health</c>).</summary>
public sealed class HealthOptions
{
    /// <summary>Not ready when the data folder's disk has less free space than this (MB).</summary>
    public int MinFreeDiskMB { get; set; } = 1024;

    /// <summary>
    /// Not ready when the indexes trail the change log by more than this many changes. The follower polls every
    /// 500 ms and searches catch up to the caller's own writes, so a healthy server is at 0 or a few hundred behind
    /// during a write burst; thousands behind means the follower is stuck or far slower than the writers.
    /// </summary>
    public int MaxIndexLag { get; set; } = 1000;

    public IEnumerable<string> Validate()
    {
        if (MinFreeDiskMB < 0)
        {
            yield return "Engram:Health:MinFreeDiskMB must be 0 or more";
        }
        if (MaxIndexLag < 0)
        {
            yield return "Engram:Health:MaxIndexLag must be 0 or more";
        }
    }
}
