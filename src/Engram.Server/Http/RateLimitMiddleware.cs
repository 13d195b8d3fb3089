using System.Threading.RateLimiting;
using Engram.Core.Telemetry;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>The host's limiter (see <see cref="RateLimits"/>) and its settings; disposed with the host's container.</summary>
internal sealed class EngramRateLimiter(PartitionedRateLimiter<HttpContext> limiter, RateLimitOptions options) : IAsyncDisposable
{
    public PartitionedRateLimiter<HttpContext> Limiter { get; } = limiter;

    public RateLimitOptions Options { get; } = options;

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
            lease = await limits.Limiter.AcquireAsync(context, 1, context.RequestAborted);
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
