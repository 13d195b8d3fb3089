using System.Globalization;
using Engram.Core.Storage;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// Tells a store that cannot serve now (busy, locked, out of disk, an I/O error, a database that is away: a retry may
/// succeed, so 503 with Retry-After) from a statement the store refused (too many terms, a value too big, a constraint:
/// a server bug or a missing input limit, so 500). Both are logged; neither shows the store's message to the caller.
/// The classification is <see cref="StoreFailure"/>'s (Core), which search and the background jobs use too.
/// </summary>
internal static class StoreFailures
{
    /// <summary>Seconds a client should wait before retrying when the database is away (a restart or failover takes seconds).</summary>
    public const int DatabaseRetryAfterSeconds = 5;

    /// <summary>...and when the store is busy (a lock, a full writer queue): it frees up in moments.</summary>
    public const int BusyRetryAfterSeconds = 1;

    public static bool IsUnavailable(StoreException exception) => StoreFailure.IsUnavailable(exception);

    /// <summary>The 503 problem for an unavailable store, naming the database (never its password) when it is one, with Retry-After.</summary>
    public static IResult Unavailable(StoreException exception)
    {
        if (exception is StoreUnavailableException away)
        {
            return new RetryAfterResult(Problems.For(503, $"the database ({away.Database}) is unavailable; writes are refused until it is back, searches answer from the indexes meanwhile. Retry later",
                extra: new Dictionary<string, object?> { ["reason"] = "database_unavailable", ["database"] = away.Database }), DatabaseRetryAfterSeconds);
        }
        return new RetryAfterResult(Problems.For(503, "the store is busy or unavailable; try again later"), BusyRetryAfterSeconds);
    }

    /// <summary>A result with a <c>Retry-After</c> header in whole seconds.</summary>
    private sealed class RetryAfterResult(IResult inner, int seconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
