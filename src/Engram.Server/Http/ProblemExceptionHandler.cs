using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Http;

/// <summary>
/// Turns every exception that escapes an endpoint into its problem body (<see cref="Problems"/>).
/// Because it reports the exception as handled, the exception middleware records no diagnostics of
/// its own: a 404 for a missing key or a 400 for a bad field is an answer, not an error, and must not
/// write a stack trace to the log. Server-side failures (5xx) are logged by <see cref="Problems"/>.
/// </summary>
internal sealed class ProblemExceptionHandler(ILoggerFactory loggers) : IExceptionHandler
{
    private readonly ILogger _logger = loggers.CreateLogger("Engram.Http");

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken ct)
    {
        await Problems.FromException(exception, _logger).ExecuteAsync(context);
        return true;
    }
}
