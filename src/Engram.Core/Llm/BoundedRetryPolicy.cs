using System.ClientModel.Primitives;
using System.Globalization;

namespace Engram.Core.Llm;

/// <summary>
/// The OpenAI client's retries (429, 5xx, network failures, honouring Retry-After), except that a Retry-After longer than
/// <see cref="MaxWaitInPlace"/> is not waited out in place: the client honoured any value, so an endpoint answering 429
/// with "Retry-After: 3600" held a chat request, and a concurrency slot, for an hour per retry. Such a call fails at once
/// with the wait in <see cref="LlmUnavailableException.RetryAfter"/>, which an extraction job uses as its backoff.
/// </summary>
internal sealed class BoundedRetryPolicy(int maxRetries) : ClientRetryPolicy(maxRetries)
{
    public static readonly TimeSpan MaxWaitInPlace = TimeSpan.FromSeconds(10);

    protected override bool ShouldRetry(PipelineMessage message, Exception? exception) =>
        base.ShouldRetry(message, exception) && !AsksTooLong(message);

    protected override async ValueTask<bool> ShouldRetryAsync(PipelineMessage message, Exception? exception) =>
        await base.ShouldRetryAsync(message, exception).ConfigureAwait(false) && !AsksTooLong(message);

    private static bool AsksTooLong(PipelineMessage message) => RetryAfterOf(message.Response) > MaxWaitInPlace;

    /// <summary>The answer's Retry-After, in seconds or as an HTTP date; null when it has none that reads.</summary>
    public static TimeSpan? RetryAfterOf(PipelineResponse? response)
    {
        if (response is null || !response.Headers.TryGetValue("Retry-After", out var value) || string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return seconds > 0 ? TimeSpan.FromSeconds(Math.Min(seconds, 86_400)) : null;
        }
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            var wait = at - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : null;
        }
        return null;
    }
}
