using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>
/// A time budget per request (<c>Engram:RequestTimeoutSeconds</c>, 0 = none), through ASP.NET Core's request
/// timeouts middleware: when it runs out, the request's cancellation token fires, and a request that stops on
/// it is answered 503 with a problem body. 503, not 408: 408 says the client was too slow sending its request,
/// which Kestrel already answers itself (MinRequestBodyDataRate, RequestHeadersTimeout); this budget is the
/// server's, spent on work it could not finish in time, which a retry later may get through (and not 504,
/// which names a gateway). A write is one store transaction: it either commits whole or not at all. One
/// already queued to the writer commits even when its caller gives up, so the detail says to read before
/// retrying.
/// </summary>
internal static class RequestTimeouts
{
    public static IServiceCollection AddEngramRequestTimeouts(this IServiceCollection services, int seconds) =>
        services.AddRequestTimeouts(timeouts => timeouts.DefaultPolicy = new RequestTimeoutPolicy
        {
            Timeout = TimeSpan.FromSeconds(seconds),
            TimeoutStatusCode = StatusCodes.Status503ServiceUnavailable,
            WriteTimeoutResponse = context => Problems.For(StatusCodes.Status503ServiceUnavailable, string.Create(CultureInfo.InvariantCulture,
                $"the request did not finish within {seconds} s (Engram:RequestTimeoutSeconds) and was stopped; a write is never applied in part, but one that had reached the store may have been applied: read before retrying it"))
                .ExecuteAsync(context),
        });
}
