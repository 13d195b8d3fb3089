using Engram.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Jobs;

/// <summary>
/// A background job's view of a store that went away: the first failure is logged once (a warning naming the job and
/// the database, not a stack trace every tick), each further attempt waits longer (1 s doubling to 10 s, with jitter, so
/// a fleet of instances does not knock on a restarting database in step), and the first success logs that the store is
/// back and how long it was away. The job itself keeps running: nothing about an outage ends the process.
/// </summary>
internal sealed partial class StoreOutage(ILogger logger, string job)
{
    public static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(10);

    private TimeSpan _next = FirstRetry;
    private DateTimeOffset? _since;

    /// <summary>Whether the last attempt found the store away.</summary>
    public bool Away => _since is not null;

    /// <summary>Whether <paramref name="exception"/> is the store being away (the job backs off) rather than a failure of its own.</summary>
    public static bool Is(Exception exception) => exception is StoreException && StoreFailure.IsUnavailable(exception);

    /// <summary>Records a failed attempt; returns how long to wait before the next.</summary>
    public TimeSpan Failed(Exception exception)
    {
        if (_since is null)
        {
            _since = DateTimeOffset.UtcNow;
            LogAway(logger, job, exception is StoreUnavailableException u ? u.Database : "the store", exception.GetBaseException().Message);
        }
        var wait = _next;
        _next = TimeSpan.FromTicks(Math.Min(_next.Ticks * 2, MaxRetry.Ticks));
        return wait + TimeSpan.FromMilliseconds(Random.Shared.Next(0, 250));
    }

    /// <summary>Records a successful attempt (logs the return after an outage).</summary>
    public void Succeeded()
    {
        if (_since is { } since)
        {
            LogBack(logger, job, (DateTimeOffset.UtcNow - since).TotalSeconds);
            _since = null;
        }
        _next = FirstRetry;
    }

    [LoggerMessage(EventId = 3010, Level = LogLevel.Warning, Message = "{Job}: {Database} is unavailable ({Error}); backing off and retrying until it is back")]
    private static partial void LogAway(ILogger logger, string job, string database, string error);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Information, Message = "{Job}: the store is back after {Seconds:0.0} s")]
    private static partial void LogBack(ILogger logger, string job, double seconds);
}
