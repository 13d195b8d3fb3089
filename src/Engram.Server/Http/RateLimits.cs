using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>
/// Per-caller limits (configuration section <c>Engram:RateLimit</c>): a token bucket (sustained rate and
/// burst) and a bound on requests in flight with a short queue, so one client cannot starve the rest.
/// The defaults are far above what an agent sends, yet bound a runaway loop: a swarm sharing one key for its
/// key-value state legitimately sends hundreds of requests a second (a single client reaches thousands over
/// loopback, bench/README.md), so the bucket allows 1,000/s with bursts of 2,000. 0 turns a limit off.
/// </summary>
public sealed class RateLimitOptions
{
    /// <summary>Requests per second a caller may sustain; 0 = no rate limit. Below 1, one request per 1/rate seconds.</summary>
    public double PermitsPerSecond { get; set; } = 1000;

    /// <summary>Requests a caller may send at once after being idle (the bucket's size).</summary>
    public int Burst { get; set; } = 2000;

    /// <summary>Requests of one caller being served at the same time; 0 = unbounded.</summary>
    public int MaxConcurrentRequests { get; set; } = 64;

    /// <summary>Requests of one caller waiting for a slot (first come, first served) before more are refused.</summary>
    public int QueueLimit { get; set; } = 256;

    /// <summary>
    /// Distinct callers (keys or addresses) with limits of their own at a time; beyond it new callers share one
    /// overflow limit (Operations.BoundedKeySet). Also bounds the failed-authentication buckets. Capped by the
    /// memory budget (1 % of it at about 1 KB a caller).
    /// </summary>
    public int MaxClients { get; set; } = 100_000;

    public bool Enabled => PermitsPerSecond > 0 || MaxConcurrentRequests > 0;

    /// <summary>How long an emptied bucket takes to fill again (at most a day); zero without a rate limit.</summary>
    public TimeSpan RefillTime => PermitsPerSecond > 0 ? TimeSpan.FromSeconds(Math.Min(Burst / PermitsPerSecond, 86_400)) : TimeSpan.Zero;

    public IEnumerable<string> Validate()
    {
        if (!double.IsFinite(PermitsPerSecond) || PermitsPerSecond < 0 || (PermitsPerSecond > 0 && PermitsPerSecond < 1.0 / 86400))
        {
            yield return "Engram:RateLimit:PermitsPerSecond must be 0 (off) or between 1/86400 and any finite number";
        }
        if (PermitsPerSecond > 0 && Burst < 1)
        {
            yield return "Engram:RateLimit:Burst must be at least 1";
        }
        if (MaxConcurrentRequests < 0)
        {
            yield return "Engram:RateLimit:MaxConcurrentRequests must be 0 (off) or more";
        }
        if (QueueLimit < 0)
        {
            yield return "Engram:RateLimit:QueueLimit must be 0 or more";
        }
        if (MaxClients < 1)
        {
            yield return "Engram:RateLimit:MaxClients must be at least 1";
        }
    }
}

/// <summary>
/// The rate limiter: a <see cref="CallerRateLimiter"/> asked by <see cref="RateLimitMiddleware"/> for every request. A
/// caller is its API key (<c>Caller.KeyId</c>, set by the authentication gate, which must therefore run first), else its
/// IP address (an IPv6 client by its /64, which one host usually owns whole). The public probes are never limited.
/// Memory stays bounded: at most <see cref="RateLimitOptions.MaxClients"/> callers have limits of their own (a
/// <see cref="BoundedKeySet{TKey}"/>); callers beyond it share one overflow partition, and the limiter drops a caller's
/// limits once its bucket has refilled while it was idle.
/// </summary>
/// <remarks>
/// Not ASP.NET Core's rate limiting middleware: it builds a limiter of its own that it never disposes, whose timer
/// keeps the whole application (services, indexes) reachable after the host stops. This limiter is a singleton of
/// the host's container, which disposes it (and its sweep) with the host.
/// </remarks>
internal static class RateLimits
{
    public static IServiceCollection AddEngramRateLimits(this IServiceCollection services, RateLimitOptions options)
    {
        var clients = Clients(options);
        return services.AddSingleton(clients).AddSingleton(_ => new EngramRateLimiter(new CallerRateLimiter(options), clients, options));
    }

    /// <summary>
    /// The bound on callers with limits of their own. A caller leaves it after being idle for longer than its limits can
    /// live on in the limiter (bucket refill, then the limiter's sweep), so the limiter's callers stay within the bound
    /// too (plus the callers of requests running longer than that window).
    /// </summary>
    internal static BoundedKeySet<ClientKey> Clients(RateLimitOptions options)
    {
        return new BoundedKeySet<ClientKey>("rate_limit_clients", options.MaxClients, TimeSpan.FromSeconds(60) + options.RefillTime);
    }

    /// <summary>429 with a problem body and <c>Retry-After</c> in whole seconds (at least 1).</summary>
    internal static async Task RejectAsync(HttpContext http, RateLimitLease lease, RateLimitOptions options)
    {
        string detail;
        int seconds;
        if (lease.TryGetMetadata(MetadataName.RetryAfter, out var wait))
        {
            seconds = (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 1, int.MaxValue);
            detail = string.Create(CultureInfo.InvariantCulture,
                $"too many requests from this client: the limit is {options.PermitsPerSecond:0.###} per second with bursts of {options.Burst} (Engram:RateLimit); retry after {seconds} s");
        }
        else
        {
            seconds = 1;
            detail = string.Create(CultureInfo.InvariantCulture,
                $"too many requests in flight from this client: at most {options.MaxConcurrentRequests} at once and {options.QueueLimit} waiting (Engram:RateLimit:MaxConcurrentRequests); retry after {seconds} s");
        }
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await Problems.For(StatusCodes.Status429TooManyRequests, detail).ExecuteAsync(http);
    }

    /// <summary>Who a request counts against: its API key, else its address.</summary>
    internal readonly record struct ClientKey(string? KeyId, IPAddress? Address)
    {
        /// <summary>The one partition every caller beyond <see cref="RateLimitOptions.MaxClients"/> shares (no key id is a ULID like this).</summary>
        public static ClientKey Overflow { get; } = new("(overflow)", null);

        /// <summary>Null for the public probes, which must answer an orchestrator even while a client floods.</summary>
        public static ClientKey? Of(HttpContext context)
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<AccessRule>() is { IsPublic: true })
            {
                return null;
            }
            if (context.GetCaller().KeyId is { } keyId)
            {
                return new ClientKey(keyId, null);
            }
            return new ClientKey(null, Network(context.Connection.RemoteIpAddress));
        }

        /// <summary>The address a limit counts: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64).</summary>
        internal static IPAddress? Network(IPAddress? address)
        {
            if (address is null || address.AddressFamily != AddressFamily.InterNetworkV6 || address.IsIPv4MappedToIPv6 || IPAddress.IsLoopback(address))
            {
                return address?.IsIPv4MappedToIPv6 == true ? address.MapToIPv4() : address;
            }
            Span<byte> bytes = stackalloc byte[16];
            address.TryWriteBytes(bytes, out _);
            bytes[8..].Clear();
            return new IPAddress(bytes);
        }
    }
}
