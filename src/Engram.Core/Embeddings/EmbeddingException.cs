namespace Engram.Core.Embeddings;

/// <summary>
/// An embedding provider could not produce vectors. <see cref="IsTransient"/> tells the caller whether the same
/// request may succeed later (queue the memory as pending and retry) or needs a fix first (configuration, input).
/// </summary>
public sealed class EmbeddingException : Exception
{
    public EmbeddingException(string message, bool isTransient, int? statusCode = null, TimeSpan? retryAfter = null, int attempts = 1, Exception? inner = null)
        : base(message, inner)
    {
        IsTransient = isTransient;
        StatusCode = statusCode;
        RetryAfter = retryAfter;
        Attempts = attempts;
    }

    /// <summary>True when retrying later may succeed: rate limits, server errors, time-outs, unreachable servers.</summary>
    public bool IsTransient { get; }

    /// <summary>The HTTP status of the last answer, or null when there was none (time-out, connection failure).</summary>
    public int? StatusCode { get; }

    /// <summary>How long the server asked to wait (Retry-After), when it did.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>How many requests were made before giving up.</summary>
    public int Attempts { get; }
}
