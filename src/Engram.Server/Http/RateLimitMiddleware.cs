using System.Threading.RateLimiting;
using Engram.Core.Telemetry;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>The host's limiter (see <see cref="RateLimits"/>), the callers it admits, and its settings; disposed with the host's container.</summary>
internal sealed class EngramRateLimiter(CallerRateLimiter limiter, BoundedKeySet<RateLimits.ClientKey> clients, RateLimitOptions options) : IAsyncDisposable
{
    public CallerRateLimiter Limiter { get; } = limiter;

    public RateLimitOptions Options { get; } = options;

    /// <summary>A lease for <paramref name="context"/>'s request, counted against its caller (or the shared overflow caller).</summary>
    public ValueTask<RateLimitLease> AcquireAsync(HttpContext context, CancellationToken ct)
    {
        RateLimits.ClientKey? key = RateLimits.ClientKey.Of(context) is { } caller ? (clients.Admit(caller) ? caller : RateLimits.ClientKey.Overflow) : null;
        return Limiter.AcquireAsync(key, ct);
    }

    public ValueTask DisposeAsync() => Limiter.DisposeAsync();
}

/// <summary>
/// Asks the limiter for a lease before the endpoint runs and holds it until the response is done: a request over
/// the rate, or beyond the in-flight bound and its queue, gets 429 with Retry-After (<see cref="RateLimits.RejectAsync"/>).
/// A client that goes away while queued is dropped without an answer.
/// </summary>
internal sealed class RateLimitMiddleware(RequestDelegate next, EngramRateLimiter limits)
{
    public async Task InvokeAsync(HttpContext context)
    {
        RateLimitLease lease;
        try
        {
            lease = await limits.AcquireAsync(context, context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        using (lease)
        {
            if (!lease.IsAcquired)
            {
                RejectedRequests.Add(1, new KeyValuePair<string, object?>("limit", lease.TryGetMetadata(MetadataName.RetryAfter, out _) ? "rate" : "concurrency"));
                await RateLimits.RejectAsync(context, lease, limits.Options);
                return;
            }
            await next(context);
        }
    }

    private static readonly System.Diagnostics.Metrics.Counter<long> RejectedRequests = EngramMeter.Meter.CreateCounter<long>(
        "engram_rate_limited_requests_total", description: "Requests refused with 429 by the per-caller limits, by limit (rate: the token bucket; concurrency: in flight and queued).");
}
