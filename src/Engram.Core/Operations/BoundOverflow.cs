using System.Diagnostics.Metrics;
using Engram.Core.Telemetry;

namespace Engram.Core.Operations;

/// <summary>
/// <c>engram_bound_overflow_total{part}</c>: entries a bounded in-process cache or queue dropped, evicted or sent to a
/// shared overflow slot because it was full. Every such structure counts here under its name in
/// <c>GET /v1/admin/memory</c> (<c>access_counts</c>, <c>audit_queue</c>, <c>audit_denied_remotes</c>, <c>api_keys</c>,
/// <c>rate_limit_clients</c>, <c>failed_auth_addresses</c>, <c>webhook_queue</c>, <c>kv_states</c>), so an operator sees a bound being hit
/// instead of guessing from a flat working set. A steady rise means the bound is too small for the traffic (raise the
/// budget) or a client is flooding (the bound is doing its job).
/// </summary>
public static class BoundOverflow
{
    private static readonly Counter<long> Overflows = EngramMeter.Meter.CreateCounter<long>("engram_bound_overflow_total",
        description: "Entries a bounded cache or queue dropped, evicted or redirected to a shared slot because it was full, by part.");

    /// <summary>Counts <paramref name="entries"/> turned away (or evicted) by the bounded part <paramref name="part"/>.</summary>
    public static void Count(string part, long entries = 1)
    {
        if (entries > 0)
        {
            Overflows.Add(entries, new KeyValuePair<string, object?>("part", part));
        }
    }
}
