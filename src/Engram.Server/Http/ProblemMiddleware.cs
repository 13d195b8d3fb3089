using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Http;

/// <summary>
/// The one place a request that went wrong becomes a problem body (<see cref="Problems"/>): an
/// exception escaping an endpoint, and any error status left without a body (routing misses
/// 404/405, a content type the endpoint does not accept 415). One middleware instead of the framework's exception handler and status-code pages
/// (two async layers and a feature object on every request: replacing them took a key-value SET
/// from 79–88 to 70 µs of server CPU, bench/README.md). Refusals (4xx) are answers, not errors: nothing is logged for them; server
/// failures (5xx) are logged by <see cref="Problems"/>.
/// </summary>
internal sealed class ProblemMiddleware(RequestDelegate next, ILoggerFactory loggers)
{
    private readonly ILogger _logger = loggers.CreateLogger("Engram.Http");

    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            await Problems.FromException(ex, _logger).ExecuteAsync(context);
            return;
        }
        var response = context.Response;
        if (response.StatusCode >= 400 && !response.HasStarted && response.ContentLength is null && string.IsNullOrEmpty(response.ContentType))
        {
            var code = response.StatusCode;
            var detail = code switch
            {
                404 => $"no route for {context.Request.Method} {context.Request.Path}",
                405 => $"{context.Request.Method} is not supported here" + (response.Headers.Allow is { Count: > 0 } allow ? $"; use {allow}" : ""),
                415 => $"the body must be JSON (Content-Type: application/json), not {context.Request.ContentType}",
                _ => $"the request was refused with status {code}",
            };
            await Problems.For(code, detail).ExecuteAsync(context);
        }
    }
}
