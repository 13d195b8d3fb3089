using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Telegram.Bot.Exceptions;

namespace Engram.Server.Telegram;

/// <summary>
/// Retries Bot API calls that failed for a passing reason: Telegram's 429 after its <c>retry_after</c>, a 5xx or a
/// network error with exponential backoff (0.5 s doubling, at most 30 s, with jitter). Other API errors (400, 401,
/// 403: a blocked bot, a bad token) are not retried.
/// </summary>
internal sealed partial class TelegramRetry(ILogger logger, int maxAttempts = 5)
{
    /// <summary>The longest wait a 429's retry_after is honoured for; past it the call fails.</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(120);

    public async Task<T> RunAsync<T>(string method, Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(ct);
            }
            catch (Exception ex) when (attempt < maxAttempts && !ct.IsCancellationRequested && DelayFor(ex, attempt) is { } delay)
            {
                LogRetry(logger, method, attempt, delay.TotalMilliseconds, ex.Message);
                await Task.Delay(delay, ct);
            }
        }
    }

    public Task RunAsync(string method, Func<CancellationToken, Task> call, CancellationToken ct) =>
        RunAsync(method, async token =>
        {
            await call(token);
            return true;
        }, ct);

    /// <summary>How long to wait before trying again after <paramref name="error"/>; null: it will not pass by waiting.</summary>
    public static TimeSpan? DelayFor(Exception error, int attempt) => error switch
    {
        ApiRequestException { ErrorCode: 429 } api => api.Parameters?.RetryAfter is { } seconds
            ? TimeSpan.FromSeconds(seconds) <= MaxRetryAfter ? TimeSpan.FromSeconds(seconds) : null
            : Backoff(attempt),
        ApiRequestException { ErrorCode: >= 500 } => Backoff(attempt),
        ApiRequestException => null,
        RequestException or HttpRequestException or SocketException or IOException => Backoff(attempt),
        OperationCanceledException => Backoff(attempt), // an HTTP time-out (the caller's own cancellation is checked before)
        _ => null,
    };

    public static TimeSpan Backoff(int attempt)
    {
        var ms = Math.Min(30_000, 500 * Math.Pow(2, Math.Min(attempt - 1, 10)));
        return TimeSpan.FromMilliseconds(ms * (0.8 + (0.4 * Random.Shared.NextDouble())));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Telegram {Method} failed (attempt {Attempt}), retrying in {DelayMs:0} ms: {Error}")]
    private static partial void LogRetry(ILogger logger, string method, int attempt, double delayMs, string error);
}
