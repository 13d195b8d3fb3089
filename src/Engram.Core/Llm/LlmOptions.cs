using System.Globalization;

namespace Engram.Core.Llm;

/// <summary>
/// The optional language model (configuration section <c>Engram:Llm</c>; LLM_BASE_URL, LLM_MODEL, LLM_API_KEY): any
/// OpenAI-compatible chat endpoint (OpenAI, Azure through its base URL, Ollama, vLLM, LM Studio, llama.cpp's server).
/// Without a base URL and a model, Engram runs without one: the features that need it answer 503 naming these settings.
/// </summary>
public sealed class LlmOptions
{
    public const string Section = "Engram:Llm:";

    /// <summary>The API root that <c>/chat/completions</c> is appended to: <c>https://api.openai.com/v1</c>, <c>http://localhost:11434/v1</c> (Ollama).</summary>
    public string BaseUrl { get; set; } = "";

    /// <summary>The model name the endpoint knows: <c>gpt-4o-mini</c>, <c>llama3.1:8b</c>, <c>qwen2.5:7b-instruct</c>.</summary>
    public string Model { get; set; } = "";

    /// <summary>Sent as <c>Authorization: Bearer …</c>; local servers usually need none.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Time allowed for one attempt (a local model on a CPU can take a minute for a long extraction).</summary>
    public int TimeoutSeconds { get; set; } = 120;

    /// <summary>
    /// Retries after the first attempt, for 408, 429, 5xx and network failures; a Retry-After from the endpoint is honoured
    /// up to 10 s in place (a longer one fails the call at once, and an extraction job waits it out as its backoff).
    /// </summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>Calls to the model at once from this instance; more wait their turn (a local model serves one or two at a time well).</summary>
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>
    /// How structured answers are asked for: <c>json_schema</c> (the default: <c>response_format</c> with the schema, which
    /// OpenAI, vLLM, Ollama and llama.cpp support; an endpoint that refuses it is asked again without, and remembered),
    /// <c>json_object</c>, or <c>none</c> (the schema goes in the prompt only). Answers are parsed leniently in every mode.
    /// </summary>
    public string StructuredOutput { get; set; } = "json_schema";

    /// <summary>Sampling temperature for extraction and reflections (chat uses the request's, else the model's default).</summary>
    public double Temperature { get; set; } = 0;

    /// <summary>Extraction jobs run at once by this instance (LLM_EXTRACTION_WORKERS).</summary>
    public int ExtractionWorkers { get; set; } = 2;

    /// <summary>Times a job is taken before a model that stays unavailable fails it (the input is kept).</summary>
    public int ExtractionMaxAttempts { get; set; } = 6;

    /// <summary>
    /// How long a worker holds a job without renewing (it renews every third of this while it runs): a job whose worker
    /// died is taken over by another worker or instance after this long.
    /// </summary>
    public int ExtractionLeaseSeconds { get; set; } = 30;

    /// <summary>Existing memories shown to the model per fact when it decides ADD, UPDATE, SUPERSEDE or NONE.</summary>
    public int ExtractionCandidates { get; set; } = 5;

    /// <summary>Whether a model is configured at all.</summary>
    public bool IsConfigured => !string.IsNullOrWhiteSpace(BaseUrl) && !string.IsNullOrWhiteSpace(Model);

    /// <summary>The settings for a log line: the key masked.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"BaseUrl={BaseUrl}, Model={Model}, ApiKey={Security.Secrets.Describe(ApiKey)}, TimeoutSeconds={TimeoutSeconds}");

    /// <summary>Problems with these settings, each naming the setting; empty when they are usable (or when no model is configured).</summary>
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(BaseUrl) != string.IsNullOrWhiteSpace(Model))
        {
            yield return Section + "BaseUrl (LLM_BASE_URL) and " + Section + "Model (LLM_MODEL) go together: set both to use a language model, or neither";
        }
        if (!string.IsNullOrWhiteSpace(BaseUrl)
            && (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
                || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0))
        {
            yield return Section + "BaseUrl (LLM_BASE_URL) must be an absolute http(s) URL without query or credentials, e.g. http://localhost:11434/v1";
        }
        if (TimeoutSeconds is < 1 or > 3600)
        {
            yield return Section + "TimeoutSeconds must be between 1 and 3600";
        }
        if (MaxRetries is < 0 or > 10)
        {
            yield return Section + "MaxRetries must be between 0 and 10";
        }
        if (MaxConcurrency is < 1 or > 256)
        {
            yield return Section + "MaxConcurrency must be between 1 and 256";
        }
        if (StructuredOutput is not ("json_schema" or "json_object" or "none"))
        {
            yield return Section + "StructuredOutput must be json_schema, json_object or none";
        }
        if (ExtractionWorkers is < 0 or > 64)
        {
            yield return Section + "ExtractionWorkers must be between 0 and 64 (0: this instance runs no extraction jobs)";
        }
        if (ExtractionMaxAttempts is < 1 or > 100)
        {
            yield return Section + "ExtractionMaxAttempts must be between 1 and 100";
        }
        if (ExtractionLeaseSeconds is < 1 or > 3600)
        {
            yield return Section + "ExtractionLeaseSeconds must be between 1 and 3600";
        }
        if (ExtractionCandidates is < 1 or > 20)
        {
            yield return Section + "ExtractionCandidates must be between 1 and 20";
        }
        if (double.IsNaN(Temperature) || Temperature is < 0 or > 2)
        {
            yield return Section + "Temperature must be between 0 and 2";
        }
    }
}
