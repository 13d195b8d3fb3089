using System.Net;
using System.Threading.RateLimiting;
using Engram.Server.Operations;

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

    /// <param name="maxAddresses">
    /// Addresses with a bucket of their own at a time (Engram:RateLimit:MaxClients, capped by the memory budget);
    /// beyond it, new addresses share one bucket (<see cref="IPAddress.None"/>, which no client has): a flood of bad keys
    /// from many addresses is throttled together instead of growing the table.
    /// </param>
    public FailedAuthThrottle(int perMinute, int maxAddresses = 100_000)
    {
        // An address leaves the set after its bucket has refilled (a minute) and the limiter dropped it (10 s).
        Addresses = new BoundedKeySet<IPAddress>("failed_auth_addresses", Math.Max(1, maxAddresses), TimeSpan.FromSeconds(90));
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
        var network = RateLimits.ClientKey.Network(address) ?? IPAddress.None;
        using var lease = _limiter.AttemptAcquire(Addresses.Admit(network) ? network : IPAddress.None);
        if (lease.IsAcquired)
        {
            return true;
        }
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
        return false;
    }

    /// <summary>The addresses with buckets of their own (for <c>GET /v1/admin/memory</c>).</summary>
    public BoundedKeySet<IPAddress> Addresses { get; }

    public void Dispose() => _limiter?.Dispose();
}
