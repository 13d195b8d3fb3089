using System.Net;
using System.Threading.RateLimiting;

namespace Engram.Server.Http;

/// <summary>
/// A token bucket per address for bad keys. The per-key limiter runs after the authentication gate, so it
/// never sees a request the gate refuses; without this an address could present bad keys as fast as the
/// server answers (each costs a hash and a store lookup). Past the budget the gate answers 429 with
/// <c>Retry-After</c> instead of 401. Valid keys from the same address are never held back.
/// </summary>
internal sealed class FailedAuthThrottle : IDisposable
{
    private readonly PartitionedRateLimiter<IPAddress>? _limiter;

    public FailedAuthThrottle(int perMinute)
    {
        if (perMinute <= 0)
        {
            return;
        }
        var bucket = new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / perMinute,
            QueueLimit = 0,
            AutoReplenishment = true,
        };
        _limiter = PartitionedRateLimiter.Create<IPAddress, IPAddress>(address => RateLimitPartition.GetTokenBucketLimiter(address, _ => bucket));
    }

    /// <summary>Counts one bad key from <paramref name="address"/>; false (with the wait) when its budget is spent.</summary>
    public bool TryCount(IPAddress? address, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (_limiter is null)
        {
            return true;
        }
        using var lease = _limiter.AttemptAcquire(RateLimits.ClientKey.Network(address) ?? IPAddress.None);
        if (lease.IsAcquired)
        {
            return true;
        }
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
        return false;
    }

    public void Dispose() => _limiter?.Dispose();
}
