using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Engram.Core.Net;
using Engram.Core.Security;

namespace Engram.Core.Embeddings;

/// <summary>
/// Embeds through any server that speaks OpenAI's <c>POST {base}/embeddings</c> (OpenAI, Ollama, vLLM, TEI, ...):
/// inputs are sent in batches of <see cref="OpenAiEmbeddingOptions.MaxBatchSize"/>, each attempt has its own
/// time-out, and transient failures (429, 5xx, time-outs, network errors) are retried with exponential backoff and
/// jitter, honouring <c>Retry-After</c>. When it gives up, it throws <see cref="EmbeddingException"/> whose
/// <see cref="EmbeddingException.IsTransient"/> tells the caller whether to queue the work for later.
/// </summary>
/// <remarks>
/// Vectors are L2-normalized here (not every server does it), ordered by the response's <c>index</c> (servers may
/// reorder), and checked for count and length. Blank texts are not sent: servers reject empty input, and the
/// contract gives them the zero vector. Thread-safe. Dispose it to release the HTTP client it created.
/// </remarks>
public sealed class OpenAiCompatibleEmbeddingProvider : IEmbeddingProvider, IDisposable
{
    /// <summary>Embedded once to learn the vector length when none is configured and only blank texts were asked for.</summary>
    private const string ProbeText = "dimension probe";

    /// <summary>How much of an error body goes into an exception message.</summary>
    private const int MaxErrorChars = 500;

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _endpoint;
    private readonly string _model;
    private readonly AuthenticationHeaderValue? _authorization;
    private readonly string? _apiKey;
    private readonly int? _configuredDimensions;
    private readonly int _maxBatchSize;
    private readonly TimeSpan _timeout;
    private readonly int _maxRetries;
    private readonly TimeSpan _retryBaseDelay;
    private readonly TimeSpan _retryMaxDelay;
    private readonly TimeSpan _maxRetryAfter;

    /// <summary>The vector length: configured, or learned from the first response (0 until then).</summary>
    private int _dimensions;

    /// <param name="options">Validated here; later changes to the object have no effect.</param>
    /// <param name="httpClient">
    /// A client to send through (not disposed here), e.g. from IHttpClientFactory; its own Timeout, if shorter than
    /// <see cref="OpenAiEmbeddingOptions.Timeout"/>, also counts as a (transient) time-out. Null: one is created by
    /// <see cref="OutboundHttp"/>, which sends only to the endpoint's host (and <paramref name="outbound"/>'s) and
    /// follows no redirect.
    /// </param>
    /// <param name="outbound">More hosts outbound requests may go to; the endpoint's own host is always allowed.</param>
    public OpenAiCompatibleEmbeddingProvider(OpenAiEmbeddingOptions options, HttpClient? httpClient = null, OutboundOptions? outbound = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate().ToList();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }
        _endpoint = new Uri(options.BaseUrl.TrimEnd('/') + "/embeddings", UriKind.Absolute);
        _model = options.Model;
        _authorization = options.ApiKey is null ? null : new AuthenticationHeaderValue("Bearer", options.ApiKey);
        _apiKey = options.ApiKey;
        _configuredDimensions = options.Dimensions;
        _dimensions = options.Dimensions ?? 0;
        _maxBatchSize = options.MaxBatchSize;
        _timeout = options.Timeout;
        _maxRetries = options.MaxRetries;
        _retryBaseDelay = options.RetryBaseDelay;
        _retryMaxDelay = options.RetryMaxDelay;
        _maxRetryAfter = options.MaxRetryAfter;
        ModelId = "openai:" + options.Model + (options.Dimensions is { } d ? ":" + d.ToString(CultureInfo.InvariantCulture) : "");
        if (httpClient is null)
        {
            _http = OutboundHttp.CreateClient(OutboundPolicy.For([_endpoint], outbound?.AllowedHosts), options.Timeout);
            _ownsHttp = true;
        }
        else
        {
            _http = httpClient;
        }
    }

    /// <summary>"openai:" + model, plus ":" + dimensions when configured (a shortened vector is a different space).</summary>
    public string ModelId { get; }

    /// <summary>
    /// The configured dimensions, else the length learned from the first successful response; 0 before that
    /// (use <see cref="GetDimensionsAsync"/> to learn it up front).
    /// </summary>
    public int Dimensions => Volatile.Read(ref _dimensions);

    /// <summary>The URL requests go to.</summary>
    public Uri Endpoint => _endpoint;

    /// <summary>The vector length, asking the server once (one short embedding) if it is not known yet.</summary>
    public async ValueTask<int> GetDimensionsAsync(CancellationToken ct = default)
    {
        if (Dimensions == 0)
        {
            await EmbedChunkAsync([ProbeText], ct).ConfigureAwait(false);
        }
        return Dimensions;
    }

    public async ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        var vectors = await EmbedBatchAsync([text], ct).ConfigureAwait(false);
        return vectors[0];
    }

    public async ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var result = new float[texts.Count][];
        // Blank texts stay out of the requests: OpenAI answers 400 to an empty input, which would fail the whole
        // batch, and the contract gives text with nothing to embed the zero vector anyway.
        var sent = new List<int>(texts.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            if (texts[i] is null)
            {
                throw new ArgumentException($"texts[{i}] is null", nameof(texts));
            }
            if (!string.IsNullOrWhiteSpace(texts[i]))
            {
                sent.Add(i);
            }
        }
        for (var start = 0; start < sent.Count; start += _maxBatchSize)
        {
            var count = Math.Min(_maxBatchSize, sent.Count - start);
            var inputs = new string[count];
            for (var j = 0; j < count; j++)
            {
                inputs[j] = texts[sent[start + j]];
            }
            var vectors = await EmbedChunkAsync(inputs, ct).ConfigureAwait(false);
            for (var j = 0; j < count; j++)
            {
                result[sent[start + j]] = vectors[j];
            }
        }
        if (sent.Count < texts.Count)
        {
            var dimensions = await GetDimensionsAsync(ct).ConfigureAwait(false);
            for (var i = 0; i < result.Length; i++)
            {
                result[i] ??= new float[dimensions];
            }
        }
        return result;
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    /// <summary>
    /// One request (at most <see cref="_maxBatchSize"/> inputs) with its retries. Every failure leaves through
    /// here, with the API key and anything credential-shaped masked: a failing server may echo the request,
    /// Authorization header included, in its error body, and the message reaches logs and <c>/v1/stats</c>.
    /// </summary>
    private async Task<float[][]> EmbedChunkAsync(IReadOnlyList<string> inputs, CancellationToken ct)
    {
        try
        {
            return await SendChunkAsync(inputs, ct).ConfigureAwait(false);
        }
        catch (EmbeddingException e)
        {
            var message = Secrets.Redact(e.Message, _apiKey);
            if (message == e.Message)
            {
                throw;
            }
            throw new EmbeddingException(message, e.IsTransient, e.StatusCode, e.RetryAfter, e.Attempts, e.InnerException);
        }
    }

    private async Task<float[][]> SendChunkAsync(IReadOnlyList<string> inputs, CancellationToken ct)
    {
        var body = BuildRequest(inputs);
        for (var attempt = 1; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            var failure = await TryOnceAsync(body, inputs.Count, attempt, ct).ConfigureAwait(false);
            if (failure.Vectors is not null)
            {
                return failure.Vectors;
            }
            if (attempt > _maxRetries)
            {
                var tries = attempt == 1 ? "" : $" (gave up after {attempt} attempts)";
                throw new EmbeddingException(failure.Message + tries, isTransient: true, failure.StatusCode, failure.RetryAfter, attempt, failure.Inner);
            }
            if (failure.RetryAfter is { } retryAfter && retryAfter > _maxRetryAfter)
            {
                // Waiting this long in place would hold the caller's write; let it queue the work instead.
                throw new EmbeddingException($"{failure.Message} (the server asked to wait {retryAfter.TotalSeconds:0.#} s, more than MaxRetryAfter)",
                    isTransient: true, failure.StatusCode, retryAfter, attempt, failure.Inner);
            }
            await Task.Delay(failure.RetryAfter ?? Backoff(attempt), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One attempt: the vectors, or a transient failure to retry. Permanent failures throw at once; so does the
    /// caller's cancellation (as <see cref="OperationCanceledException"/>).
    /// </summary>
    private async Task<Attempt> TryOnceAsync(byte[] body, int count, int attempt, CancellationToken ct)
    {
        using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        attemptCts.CancelAfter(_timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint);
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Authorization = _authorization;
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attemptCts.Token).ConfigureAwait(false);
            // Reading the body is part of the attempt: a server that sends headers and then stalls also times out.
            var payload = await response.Content.ReadAsByteArrayAsync(attemptCts.Token).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return new Attempt(ParseResponse(payload, count, (int)response.StatusCode, attempt));
            }
            var status = (int)response.StatusCode;
            var message = $"Embedding request to {_endpoint} failed with {status} {response.ReasonPhrase}: {ErrorMessage(payload)}";
            if (!IsTransientStatus(status))
            {
                throw new EmbeddingException(message, isTransient: false, status, attempts: attempt);
            }
            var retryAfter = status is 429 or 503 ? RetryAfter(response) : null;
            return new Attempt(message, status, retryAfter, null);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            // Not the caller's token: this attempt's time-out (or the HttpClient's own).
            return new Attempt($"Embedding request to {_endpoint} got no answer within {_timeout.TotalSeconds:0.###} s", null, null, e);
        }
        catch (OutboundRefusedException e)
        {
            // A host that is not configured, or a redirect: retrying cannot help.
            throw new EmbeddingException($"Embedding request to {_endpoint} refused: {e.Message}", isTransient: false, attempts: attempt, inner: e);
        }
        catch (HttpRequestException e) when (IsTransientNetworkError(e))
        {
            return new Attempt($"Embedding request to {_endpoint} failed: {e.Message}", null, null, e);
        }
        catch (HttpRequestException e)
        {
            throw new EmbeddingException($"Embedding request to {_endpoint} failed: {e.Message}", isTransient: false, attempts: attempt, inner: e);
        }
        catch (IOException e)
        {
            // The connection broke while the body was read.
            return new Attempt($"Embedding request to {_endpoint} failed reading the answer: {e.Message}", null, null, e);
        }
    }

    private byte[] BuildRequest(IReadOnlyList<string> inputs)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("model", _model);
            writer.WriteStartArray("input");
            foreach (var input in inputs)
            {
                writer.WriteStringValue(input);
            }
            writer.WriteEndArray();
            writer.WriteString("encoding_format", "float");
            if (_configuredDimensions is { } dimensions)
            {
                writer.WriteNumber("dimensions", dimensions);
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads <c>{"data":[{"index":i,"embedding":[…]}, …]}</c> into unit vectors ordered by index.</summary>
    private float[][] ParseResponse(byte[] payload, int count, int status, int attempt)
    {
        EmbeddingException Malformed(string detail) =>
            new($"Embedding response from {_endpoint} (model {_model}) is not usable: {detail}", isTransient: false, status, attempts: attempt);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload);
        }
        catch (JsonException e)
        {
            throw Malformed($"invalid JSON ({e.Message}): {Excerpt(payload)}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            {
                throw Malformed($"no \"data\" array: {Excerpt(payload)}");
            }
            if (data.GetArrayLength() != count)
            {
                throw Malformed($"{data.GetArrayLength()} embeddings for {count} inputs");
            }
            var expected = Dimensions;
            var vectors = new float[count][];
            var position = 0;
            foreach (var item in data.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object)
                {
                    throw Malformed($"data[{position}] is not an object");
                }
                // Servers may answer out of order; "index" says which input a vector belongs to.
                var index = position;
                if (item.TryGetProperty("index", out var indexElement)
                    && (indexElement.ValueKind != JsonValueKind.Number || !indexElement.TryGetInt32(out index)))
                {
                    throw Malformed($"data[{position}].index is not an integer");
                }
                if (index < 0 || index >= count || vectors[index] is not null)
                {
                    throw Malformed($"data[{position}].index {index} is out of range or repeated");
                }
                if (!item.TryGetProperty("embedding", out var embedding) || embedding.ValueKind != JsonValueKind.Array)
                {
                    throw Malformed($"data[{position}].embedding is not an array of floats");
                }
                var vector = new float[embedding.GetArrayLength()];
                var k = 0;
                foreach (var value in embedding.EnumerateArray())
                {
                    if (value.ValueKind != JsonValueKind.Number || !value.TryGetSingle(out vector[k]) || !float.IsFinite(vector[k]))
                    {
                        throw Malformed($"data[{position}].embedding[{k}] is not a finite number");
                    }
                    k++;
                }
                if (vector.Length == 0)
                {
                    throw Malformed($"data[{position}].embedding is empty");
                }
                if (expected == 0)
                {
                    // No length configured: the first vector ever seen sets it for this provider's lifetime.
                    var learned = Interlocked.CompareExchange(ref _dimensions, vector.Length, 0);
                    expected = learned == 0 ? vector.Length : learned;
                }
                if (vector.Length != expected)
                {
                    throw Malformed($"data[{position}].embedding has {vector.Length} dimensions, expected {expected}"
                        + (_configuredDimensions is null ? " (learned from an earlier response)" : " (Dimensions setting)"));
                }
                Normalize(vector);
                vectors[index] = vector;
                position++;
            }
            return vectors;
        }
    }

    /// <summary>Scales to length 1; a zero vector stays zero (the contract's "nothing to embed").</summary>
    private static void Normalize(float[] vector)
    {
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0 && float.IsFinite(norm))
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
        else if (!float.IsFinite(norm))
        {
            // Finite elements whose squares overflow: scale down first, then normalize.
            var max = TensorPrimitives.MaxMagnitude(vector);
            TensorPrimitives.Divide(vector, Math.Abs(max), vector);
            TensorPrimitives.Divide(vector, TensorPrimitives.Norm(vector), vector);
        }
    }

    /// <summary>The server's error text: OpenAI's {"error":{"message":…}}, Ollama/TEI's {"error":"…"}, or the raw body.</summary>
    private static string ErrorMessage(byte[] payload)
    {
        try
        {
            using var document = JsonDocument.Parse(payload);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("error", out var error))
                {
                    if (error.ValueKind == JsonValueKind.String)
                    {
                        return Truncate(error.GetString()!);
                    }
                    if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String)
                    {
                        return Truncate(message.GetString()!);
                    }
                }
                if (root.TryGetProperty("message", out var topMessage) && topMessage.ValueKind == JsonValueKind.String)
                {
                    return Truncate(topMessage.GetString()!);
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML page, plain text): show it as it is.
        }
        return Excerpt(payload);
    }

    private static string Excerpt(byte[] payload) =>
        payload.Length == 0 ? "(empty body)" : Truncate(Encoding.UTF8.GetString(payload, 0, Math.Min(payload.Length, MaxErrorChars * 4)));

    private static string Truncate(string text)
    {
        text = text.Trim();
        return text.Length <= MaxErrorChars ? text : text[..MaxErrorChars] + "…";
    }

    /// <summary>Rate limits, time-outs and server errors may pass; other 4xx (bad request, key, model name) will not.</summary>
    private static bool IsTransientStatus(int status) => status is 408 or 425 or 429 || status >= 500;

    /// <summary>Connection refused or reset, DNS hiccups, a dropped answer: worth retrying. TLS and protocol mismatches are not.</summary>
    private static bool IsTransientNetworkError(HttpRequestException e) => e.HttpRequestError switch
    {
        HttpRequestError.SecureConnectionError
            or HttpRequestError.UserAuthenticationError
            or HttpRequestError.VersionNegotiationError
            or HttpRequestError.ConfigurationLimitExceeded
            or HttpRequestError.ExtendedConnectNotSupported
            or HttpRequestError.InvalidResponse => false,
        _ => true,
    };

    /// <summary>
    /// The server's requested wait: "retry-after-ms" (sent by OpenAI, finer than seconds), else Retry-After as
    /// seconds or an HTTP date.
    /// </summary>
    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)
            && double.IsFinite(ms) && ms >= 0 && ms < TimeSpan.MaxValue.TotalMilliseconds)
        {
            return TimeSpan.FromMilliseconds(ms);
        }
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }
        if (header?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }

    /// <summary>Exponential backoff with "equal jitter": half the step fixed, half random, so parallel callers spread out.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var step = _retryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        step = Math.Min(step, _retryMaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds((step / 2) + (Random.Shared.NextDouble() * step / 2));
    }

    /// <summary>The outcome of one attempt: vectors, or why it failed transiently.</summary>
    private readonly record struct Attempt(float[][]? Vectors, string Message, int? StatusCode, TimeSpan? RetryAfter, Exception? Inner)
    {
        public Attempt(float[][] vectors) : this(vectors, "", null, null, null) { }

        public Attempt(string message, int? statusCode, TimeSpan? retryAfter, Exception? inner) : this(null, message, statusCode, retryAfter, inner) { }
    }
}
