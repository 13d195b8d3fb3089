namespace Engram.Core.Llm;

/// <summary>A feature that needs the language model was asked for, and none is configured (HTTP 503, naming the settings).</summary>
public sealed class LlmNotConfiguredException(string feature)
    : Exception($"{feature} needs a language model, and none is configured: set LLM_BASE_URL and LLM_MODEL (Engram:Llm:BaseUrl, Engram:Llm:Model), and LLM_API_KEY if the endpoint wants one")
{
    public string Feature { get; } = feature;
}

/// <summary>The model could not be reached or kept failing after its retries (HTTP 502 for a caller waiting on it; a job retries later).</summary>
public sealed class LlmUnavailableException(string message, Exception? inner = null, TimeSpan? retryAfter = null) : Exception(message, inner)
{
    /// <summary>How long the endpoint asked to wait, when it said (a 429's Retry-After beyond what was honoured in place).</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>The model answered, twice, with something that is not the JSON asked for (a job is then marked failed with this reason).</summary>
public sealed class LlmOutputException(string message, string rawAnswer) : Exception(message)
{
    /// <summary>The model's last answer as it came (for the job's record).</summary>
    public string RawAnswer { get; } = rawAnswer;
}
