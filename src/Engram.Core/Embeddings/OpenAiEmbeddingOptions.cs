namespace Engram.Core.Embeddings;

/// <summary>
/// Settings of <see cref="OpenAiCompatibleEmbeddingProvider"/> (configuration section
/// <c>Engram:Embeddings:OpenAi</c>): any server that speaks OpenAI's <c>POST /v1/embeddings</c>
/// (OpenAI, Ollama, vLLM, Hugging Face TEI, LiteLLM, ...).
/// </summary>
public sealed class OpenAiEmbeddingOptions
{
    private const string Section = "Engram:Embeddings:OpenAi:";

    /// <summary>The API root that <c>/embeddings</c> is appended to, e.g. <c>https://api.openai.com/v1</c> or <c>http://localhost:11434/v1</c> (Ollama).</summary>
    public string BaseUrl { get; set; } = "";

    /// <summary>The model name the server knows, e.g. <c>text-embedding-3-small</c> or <c>nomic-embed-text</c>.</summary>
    public string Model { get; set; } = "";

    /// <summary>Sent as <c>Authorization: Bearer …</c> when set; local servers usually need none.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// When set, sent as the request's <c>dimensions</c> field (models that can shorten their vectors) and every
    /// returned vector must have this length. When not set, the length is learned from the first response.
    /// </summary>
    public int? Dimensions { get; set; }

    /// <summary>Inputs per request; larger batches are split.</summary>
    public int MaxBatchSize { get; set; } = 64;

    /// <summary>Time allowed for one attempt (sending, waiting and reading the answer).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries after the first attempt of a request, for transient failures only (429, 5xx, time-outs, network errors).</summary>
    public int MaxRetries { get; set; } = 4;

    /// <summary>The first retry waits about this long; each further one doubles it (with jitter).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>No computed backoff waits longer than this.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The longest server-requested wait (<c>Retry-After</c> on 429/503) that is honoured in place. A longer one
    /// ends the call at once with a transient <see cref="EmbeddingException"/> carrying the wait, so a rate-limited
    /// write is queued by the caller instead of holding it for minutes.
    /// </summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The settings for a log line or a debugger: the key is masked (<see cref="Security.Secrets.Describe"/>).</summary>
    public override string ToString() =>
        $"BaseUrl={BaseUrl}, Model={Model}, ApiKey={Security.Secrets.Describe(ApiKey)}, Dimensions={Dimensions?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "learned"}";

    /// <summary>Problems with these settings, each naming the setting; empty when they are usable.</summary>
    public IEnumerable<string> Validate()
    {
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            yield return Section + "BaseUrl must be an absolute http(s) URL, e.g. https://api.openai.com/v1";
        }
        else if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            yield return Section + "BaseUrl must not have a query or fragment (\"/embeddings\" is appended to it)";
        }
        else if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            // Credentials in the URL would be shown in every error message; the key belongs in ApiKey.
            yield return Section + "BaseUrl must not contain credentials (user:password@); put the key in ApiKey";
        }
        if (string.IsNullOrWhiteSpace(Model))
        {
            yield return Section + "Model must be set, e.g. text-embedding-3-small";
        }
        if (ApiKey is not null && (ApiKey.Length == 0 || ApiKey.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))))
        {
            // A key with a newline (copied from a file) would otherwise fail on every request with an obscure header error.
            yield return Section + "ApiKey must not be empty or contain whitespace or control characters (leave it unset for no key)";
        }
        if (Dimensions is < 1)
        {
            yield return Section + "Dimensions must be at least 1 when set";
        }
        if (MaxBatchSize < 1)
        {
            yield return Section + "MaxBatchSize must be at least 1";
        }
        if (Timeout <= TimeSpan.Zero || Timeout > TimeSpan.FromHours(1))
        {
            yield return Section + "Timeout must be more than 0 and at most 1 hour, e.g. 00:00:30";
        }
        if (MaxRetries < 0)
        {
            yield return Section + "MaxRetries must be >= 0";
        }
        if (RetryBaseDelay < TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay)
        {
            yield return Section + "RetryBaseDelay must be >= 0 and RetryMaxDelay >= RetryBaseDelay";
        }
        if (MaxRetryAfter < TimeSpan.Zero)
        {
            yield return Section + "MaxRetryAfter must be >= 0";
        }
    }
}
