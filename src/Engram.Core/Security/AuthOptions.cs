namespace Engram.Core.Security;

/// <summary>Settings of API keys and the audit log (<c>Engram:Auth</c>).</summary>
public sealed class AuthOptions
{
    /// <summary>Serve <c>/metrics</c> without a key even when keys exist (scrapers inside a trusted network).</summary>
    public bool OpenMetrics { get; set; }

    /// <summary>The audit log keeps this many newest entries; older ones are pruned as new ones are written.</summary>
    public int AuditMaxRows { get; set; } = 100_000;

    /// <summary>Keys the server keeps in memory after their first use (each lookup is then one dictionary probe).</summary>
    public int KeyCacheSize { get; set; } = 10_000;

    /// <summary>
    /// Bad keys one address (IPv6: its /64) may present per minute before it gets 429 instead of 401; 0 = no limit.
    /// Requests without a key do not count: they cost the server nothing.
    /// </summary>
    public int FailedAttemptsPerMinute { get; set; } = 60;

    public IEnumerable<string> Validate()
    {
        if (FailedAttemptsPerMinute < 0)
        {
            yield return "Engram:Auth:FailedAttemptsPerMinute must be 0 (no limit) or more";
        }
        if (AuditMaxRows < 100)
        {
            yield return "Engram:Auth:AuditMaxRows must be at least 100";
        }
        if (KeyCacheSize < 1)
        {
            yield return "Engram:Auth:KeyCacheSize must be at least 1";
        }
    }
}
