using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Http.Headers;
using System.Text.Json;
using Engram.Core.Net;
using Engram.Core.Telemetry;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Engram.Core.Llm;

/// <summary>
/// The configured chat model, through Microsoft.Extensions.AI's <see cref="IChatClient"/> over the OpenAI client (any
/// OpenAI-compatible endpoint). Adds what every caller needs: a bound on calls in flight, retries with backoff that honour
/// Retry-After (the OpenAI client's pipeline), a time-out per attempt, failures as <see cref="LlmUnavailableException"/>,
/// and the model's state for /health, /v1/stats and the metrics. Requests go only to the configured host
/// (<see cref="OutboundHttp"/>). Structured answers: <see cref="AskJsonAsync{T}"/>.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private static readonly Counter<long> Requests = EngramMeter.Meter.CreateCounter<long>(
        "engram_llm_requests_total", description: "Calls to the language model, by result (ok, error, invalid_output).");

    /// <summary>
    /// Starts the request counter's ok and error series at 0 (a counter appears at its first Add), so a rate over them
    /// (the EngramLlmFailing rule) has a series from the start. The server calls it once.
    /// </summary>
    public static void StartCounters()
    {
        Requests.Add(0, new KeyValuePair<string, object?>("result", "ok"));
        Requests.Add(0, new KeyValuePair<string, object?>("result", "error"));
    }

    private static readonly Histogram<double> Duration = EngramMeter.Meter.CreateHistogram(
        "engram_llm_duration_seconds", unit: null, description: "Time of one call to the language model (retries included).", tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] });

    /// <summary>
    /// The longest answer body read from the endpoint (16 MB: a long chat answer is well under 1 MB). Answers are
    /// buffered whole, so a broken or hostile endpoint that sends without end fails the call instead of the server.
    /// </summary>
    public const long MaxAnswerBytes = 16L * 1024 * 1024;

    private readonly HttpClient _http;
    private readonly SemaphoreSlim _slots;
    private readonly Lock _lock = new();
    private volatile bool _schemaRefused;
    private long _calls;
    private long _failures;
    private int _waiting;
    private double? _lastLatencyMs;
    private string? _lastError;
    private DateTimeOffset? _lastErrorAt;
    private DateTimeOffset? _lastSuccessAt;

    public LanguageModel(LlmOptions options, OutboundOptions? outbound = null, IChatClient? client = null)
    {
        if (!options.IsConfigured)
        {
            throw new ArgumentException("no language model is configured", nameof(options));
        }
        Options = options;
        Endpoint = new Uri(options.BaseUrl.TrimEnd('/') + "/");
        _http = OutboundHttp.CreateClient(OutboundPolicy.For([Endpoint], outbound?.AllowedHosts), TimeSpan.FromSeconds(Math.Min(30, options.TimeoutSeconds)),
            MaxAnswerBytes);
        _slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        Client = client ?? new OpenAIClient(
            new ApiKeyCredential(string.IsNullOrEmpty(options.ApiKey) ? "none" : options.ApiKey),
            new OpenAIClientOptions
            {
                Endpoint = Endpoint,
                NetworkTimeout = TimeSpan.FromSeconds(options.TimeoutSeconds),
                RetryPolicy = new BoundedRetryPolicy(options.MaxRetries),
                Transport = new HttpClientPipelineTransport(_http),
            }).GetChatClient(options.Model).AsIChatClient();
    }

    /// <summary>The model, or null when none is configured.</summary>
    public static LanguageModel? CreateIfConfigured(LlmOptions options, OutboundOptions? outbound = null) =>
        options.IsConfigured ? new LanguageModel(options, outbound) : null;

    public LlmOptions Options { get; }

    /// <summary>The API root (ends with '/'): what raw requests (the chat proxy) are sent under.</summary>
    public Uri Endpoint { get; }

    public IChatClient Client { get; }

    /// <summary>
    /// Sends a request as it is to the endpoint (the OpenAI-compatible proxy forwards bodies unchanged): the configured
    /// key is set, only the configured host is reachable, and the call counts against <see cref="LlmOptions.MaxConcurrency"/>
    /// until the returned lease is disposed (after a streamed answer has been relayed).
    /// </summary>
    public async Task<(HttpResponseMessage Response, IDisposable Lease)> SendRawAsync(string relativePath, HttpContent body, CancellationToken ct)
    {
        var lease = await EnterAsync(ct).ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(Options.TimeoutSeconds));
            var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Endpoint, relativePath.TrimStart('/'))) { Content = body };
            if (!string.IsNullOrEmpty(Options.ApiKey))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Options.ApiKey);
            }
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            Record(started, response.IsSuccessStatusCode ? null : $"the model endpoint answered {(int)response.StatusCode}");
            return (response, lease);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            lease.Dispose();
            var message = ex switch
            {
                OperationCanceledException => $"the model did not answer within {Options.TimeoutSeconds} s",
                ResponseTooLargeException => ex.Message,
                _ => "the model endpoint cannot be reached: " + ex.Message,
            };
            Record(started, message);
            throw new LlmUnavailableException(message, ex);
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    /// <summary>One chat call: the answer, or <see cref="LlmUnavailableException"/> once the retries are spent.</summary>
    public async Task<ChatResponse> CompleteAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken ct = default)
    {
        using var lease = await EnterAsync(ct).ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await Client.GetResponseAsync(messages, options, ct).ConfigureAwait(false);
            Record(started, null);
            return response;
        }
        catch (Exception ex) when (IsModelFailure(ex, ct))
        {
            var failure = Describe(ex);
            Record(started, failure.Message);
            throw failure;
        }
    }

    /// <summary>A streamed chat call; failures before the first update are <see cref="LlmUnavailableException"/>.</summary>
    public async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        using var lease = await EnterAsync(ct).ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        await using var updates = Client.GetStreamingResponseAsync(messages, options, ct).GetAsyncEnumerator(ct);
        var received = 0;
        while (true)
        {
            ChatResponseUpdate update;
            try
            {
                if (!await updates.MoveNextAsync().ConfigureAwait(false))
                {
                    break;
                }
                update = updates.Current;
            }
            catch (Exception ex) when (IsModelFailure(ex, ct))
            {
                var failure = Describe(ex);
                Record(started, failure.Message);
                throw failure;
            }
            received++;
            yield return update;
        }
        if (received == 0)
        {
            // A chat-completion stream has at least one chunk (the role, the finish reason). An answer without any event
            // (a proxy's HTML page with status 200, a bare "data: [DONE]") read as an empty answer: the client's stream
            // ended with nothing and no error.
            const string failure = "the model endpoint's streamed answer held no chat-completion chunk (not a server-sent event stream of an OpenAI-compatible endpoint)";
            Record(started, failure);
            throw new LlmUnavailableException(failure);
        }
        Record(started, null);
    }

    /// <summary>
    /// Asks for a JSON answer of shape <typeparamref name="T"/> (described by its JSON schema): with the endpoint's
    /// structured output where it has it, parsed leniently (<see cref="LenientJson"/>), then checked by
    /// <paramref name="validate"/> (null when fine, else what is wrong). An answer that does not parse or validate is
    /// sent back once with the problem; a second bad answer is <see cref="LlmOutputException"/>.
    /// </summary>
    public async Task<T> AskJsonAsync<T>(IList<ChatMessage> messages, string schemaName, JsonSerializerOptions json, Func<T, string?>? validate = null,
        CancellationToken ct = default)
    {
        var schema = AIJsonUtilities.CreateJsonSchema(typeof(T), serializerOptions: json);
        var conversation = new List<ChatMessage>(messages);
        string raw = "";
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var response = await CompleteStructuredAsync(conversation, schema, schemaName, ct).ConfigureAwait(false);
            raw = response.Text;
            var problem = Parse(raw, json, validate, out var value);
            if (problem is null)
            {
                return value!;
            }
            Requests.Add(1, new KeyValuePair<string, object?>("result", "invalid_output"));
            conversation.Add(new ChatMessage(ChatRole.Assistant, raw));
            conversation.Add(new ChatMessage(ChatRole.User,
                $"That answer is not usable: {problem}. Answer again with only one JSON object that follows this JSON schema, nothing else:\n{schema.GetRawText()}"));
            if (attempt == 2)
            {
                lock (_lock)
                {
                    _lastError = "invalid output: " + problem;
                    _lastErrorAt = DateTimeOffset.UtcNow;
                }
                throw new LlmOutputException($"the model's answer was not the JSON asked for, twice: {problem}", raw);
            }
        }
        throw new UnreachableException();
    }

    private async Task<ChatResponse> CompleteStructuredAsync(List<ChatMessage> conversation, JsonElement schema, string schemaName, CancellationToken ct)
    {
        var options = new ChatOptions { Temperature = (float)Options.Temperature };
        var mode = _schemaRefused && Options.StructuredOutput == "json_schema" ? "json_object" : Options.StructuredOutput;
        options.ResponseFormat = mode switch
        {
            "json_schema" => ChatResponseFormat.ForJsonSchema(schema, schemaName),
            "json_object" => ChatResponseFormat.Json,
            _ => null,
        };
        var messages = mode == "json_schema"
            ? conversation
            : [.. conversation, new ChatMessage(ChatRole.System, "Answer with only one JSON object that follows this JSON schema:\n" + schema.GetRawText())];
        try
        {
            return await CompleteAsync(messages, options, ct).ConfigureAwait(false);
        }
        catch (LlmUnavailableException ex) when (mode == "json_schema" && ex.InnerException is ClientResultException { Status: 400 } refused
            && refused.Message.Contains("response_format", StringComparison.OrdinalIgnoreCase))
        {
            _schemaRefused = true; // an endpoint without json_schema support: json_object from now on
            return await CompleteStructuredAsync(conversation, schema, schemaName, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Null when <paramref name="raw"/> holds a valid <typeparamref name="T"/>, else what is wrong with it.</summary>
    internal static string? Parse<T>(string raw, JsonSerializerOptions json, Func<T, string?>? validate, out T? value)
    {
        value = default;
        if (LenientJson.Extract(raw, out var problem) is not { } element)
        {
            return problem;
        }
        try
        {
            value = element.Deserialize<T>(json);
        }
        catch (JsonException ex)
        {
            return "the JSON does not match the schema: " + ex.Message;
        }
        if (value is null)
        {
            return "the JSON is null";
        }
        return validate?.Invoke(value);
    }

    /// <summary>What /health, /v1/stats and the doctor show of the model.</summary>
    public LlmStatus Status()
    {
        lock (_lock)
        {
            return new LlmStatus(Options.Model, Endpoint.GetLeftPart(UriPartial.Path), Interlocked.Read(ref _calls), Interlocked.Read(ref _failures),
                _lastLatencyMs, _lastError, _lastErrorAt, _lastSuccessAt, Options.MaxConcurrency - _slots.CurrentCount, Volatile.Read(ref _waiting));
        }
    }

    public void Dispose()
    {
        (Client as IDisposable)?.Dispose();
        _http.Dispose();
        _slots.Dispose();
    }

    private async Task<IDisposable> EnterAsync(CancellationToken ct)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _slots.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        return new Slot(_slots);
    }

    private void Record(long started, string? error)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        Interlocked.Increment(ref _calls);
        Duration.Record(elapsed.TotalSeconds);
        Requests.Add(1, new KeyValuePair<string, object?>("result", error is null ? "ok" : "error"));
        lock (_lock)
        {
            _lastLatencyMs = Math.Round(elapsed.TotalMilliseconds, 1);
            if (error is null)
            {
                _lastSuccessAt = DateTimeOffset.UtcNow;
            }
            else
            {
                Interlocked.Increment(ref _failures);
                _lastError = error;
                _lastErrorAt = DateTimeOffset.UtcNow;
            }
        }
    }

    /// <summary>
    /// A relayed answer (<see cref="SendRawAsync"/>) that broke off after its headers: counted as the model's failure, so
    /// /health, /v1/stats and the llm_failing alert see it like any other.
    /// </summary>
    public void RecordRelayFailure(string error)
    {
        Interlocked.Increment(ref _failures);
        Requests.Add(1, new KeyValuePair<string, object?>("result", "error"));
        lock (_lock)
        {
            _lastError = error;
            _lastErrorAt = DateTimeOffset.UtcNow;
        }
    }

    /// <summary>
    /// Whatever the client throws while calling the endpoint and reading its answer is the endpoint's failure, except a
    /// cancellation by the caller: besides HTTP errors, an answer that is not an OpenAI chat completion (no choices, a
    /// role or finish reason the client does not know, invalid UTF-8, a value of the wrong type) makes the client throw
    /// ArgumentException, InvalidOperationException, even NullReferenceException. Those were answered 500 as if
    /// Engram were broken; they are the model's (502) and a job retries them.
    /// </summary>
    private static bool IsModelFailure(Exception ex, CancellationToken ct) =>
        ex is not OperationCanceledException || !ct.IsCancellationRequested;

    private LlmUnavailableException Describe(Exception ex) => ex switch
    {
        ClientResultException { Status: 0, InnerException: ResponseTooLargeException big } => new LlmUnavailableException(big.Message, ex),
        ClientResultException { Status: 0 } e => new LlmUnavailableException("the model endpoint cannot be reached: " + (e.InnerException?.Message ?? e.Message), ex),
        ClientResultException e => new LlmUnavailableException($"the model endpoint answered {e.Status}: {Trim(e.Message)}", ex, RetryAfterOf(e)),
        OperationCanceledException => new LlmUnavailableException($"the model did not answer within {Options.TimeoutSeconds} s", ex),
        ResponseTooLargeException => new LlmUnavailableException(ex.Message, ex),
        HttpRequestException or IOException or OutboundRefusedException => new LlmUnavailableException("the model call failed: " + ex.Message, ex),
        _ => new LlmUnavailableException("the model endpoint's answer could not be read as an OpenAI-compatible chat completion: " + Trim(ex.Message), ex),
    };

    private static TimeSpan? RetryAfterOf(ClientResultException e) => BoundedRetryPolicy.RetryAfterOf(e.GetRawResponse());

    private static string Trim(string message) => message.Length <= 300 ? message : message[..300] + "…";

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release();
            }
        }
    }
}

/// <summary>The model's state: calls and failures since start, the last call's latency, the last error and when, calls in flight and waiting.</summary>
public sealed record LlmStatus(string Model, string Endpoint, long Calls, long Failures, double? LastLatencyMs, string? LastError,
    DateTimeOffset? LastErrorAt, DateTimeOffset? LastSuccessAt, int InFlight, int Waiting);
