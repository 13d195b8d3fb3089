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
            if (RefusedBeforeTheUi(ex) is { } refusal && ForBrowserOnUi(context))
            {
                await Ui.UiPage.Error(context, refusal.Status, refusal.Message, navigation: false).ExecuteAsync(context);
                return;
            }
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
            if (code < 500 && ForBrowserOnUi(context))
            {
                await Ui.UiPage.Error(context, code, detail, navigation: false).ExecuteAsync(context);
                return;
            }
            await Problems.For(code, detail).ExecuteAsync(context);
        }
    }

    /// <summary>
    /// A browser's request under <c>/ui</c> (Accept: text/html): a refusal made before the UI's own code runs (a NUL or
    /// bytes that are not UTF-8 in the path or query, a target past the limit, no such page) is a page with its status,
    /// like the UI's own refusals, instead of a JSON problem body; other clients and other paths keep the problem body.
    /// </summary>
    private static bool ForBrowserOnUi(HttpContext context) => Ui.UiSession.IsUiPath(context.Request.Path) && Ui.UiPage.WantsHtml(context);

    /// <summary>The status and text of a client error raised before an endpoint (the request's own fault), or null for anything else.</summary>
    private static (int Status, string Message)? RefusedBeforeTheUi(Exception exception) => exception switch
    {
        Core.Common.ValidationException v => (400, v.Message),
        BadHttpRequestException { StatusCode: >= 400 and < 500 } b => (b.StatusCode, b.Message),
        _ => null,
    };
}
