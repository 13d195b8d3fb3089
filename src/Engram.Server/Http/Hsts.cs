using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// <c>Strict-Transport-Security</c> on every HTTPS response when TLS is configured, error and problem bodies
/// included (added as the response starts, so <see cref="ProblemMiddleware"/> clearing the headers cannot drop
/// it). Unlike ASP.NET Core's UseHsts this does not skip localhost: the header is harmless there, and a test
/// can see it. Plain HTTP responses never carry it (RFC 6797 forbids it).
/// </summary>
internal sealed class Hsts(RequestDelegate next, int maxAgeSeconds)
{
    private readonly string _value = "max-age=" + maxAgeSeconds.ToString(CultureInfo.InvariantCulture);

    public Task InvokeAsync(HttpContext context)
    {
        if (context.Request.IsHttps)
        {
            context.Response.OnStarting(static state =>
            {
                var (response, value) = ((HttpResponse, string))state;
                response.Headers.StrictTransportSecurity = value;
                return Task.CompletedTask;
            }, (context.Response, _value));
        }
        return next(context);
    }
}
