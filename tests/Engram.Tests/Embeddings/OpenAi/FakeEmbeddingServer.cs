using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Embeddings;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Embeddings.OpenAi;

/// <summary>One request as the fake server saw it.</summary>
public sealed record RecordedRequest(
    int Number,
    string Method,
    string Path,
    string? Authorization,
    string? ContentType,
    JsonObject Body,
    TimeSpan ReceivedAt)
{
    public string? Model => (string?)Body["model"];

    public string? EncodingFormat => (string?)Body["encoding_format"];

    public int? Dimensions => (int?)Body["dimensions"];

    public IReadOnlyList<string> Inputs => [.. Body["input"]!.AsArray().Select(n => (string)n!)];
}

/// <summary>
/// A tiny OpenAI-compatible embeddings server on Kestrel (127.0.0.1, a free port) that records every request.
/// By default it answers with <see cref="HashEmbeddingProvider"/> vectors, so results can be checked; a test
/// swaps <see cref="Handler"/> to inject failures. Vectors are sent scaled by <see cref="Scale"/> (not unit length)
/// so the client's normalization is observable.
/// </summary>
public sealed class FakeEmbeddingServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _count;

    private FakeEmbeddingServer(WebApplication app) => _app = app;

    /// <summary>The base URL to configure, ending in /v1.</summary>
    public string BaseUrl { get; private set; } = "";

    /// <summary>Length of the default answer's vectors (ignored when the request sends "dimensions").</summary>
    public int DefaultDimensions { get; set; } = 24;

    public float Scale { get; set; } = 3f;

    /// <summary>Reverse the order of "data" in default answers (the index still says which input each is).</summary>
    public bool Shuffle { get; set; }

    /// <summary>Answers a request; the default writes embeddings. Set by tests to fail, stall or misbehave.</summary>
    public Func<HttpContext, RecordedRequest, Task> Handler { get; set; }
        = (context, request) => throw new InvalidOperationException("replaced in StartAsync");

    public IReadOnlyList<RecordedRequest> Requests => [.. _requests.OrderBy(r => r.Number)];

    public static async Task<FakeEmbeddingServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new FakeEmbeddingServer(app);
        server.Handler = server.WriteEmbeddingsAsync;
        app.Run(server.HandleAsync);
        await app.StartAsync();
        server.BaseUrl = app.Urls.Single().TrimEnd('/') + "/v1";
        return server;
    }

    /// <summary>The vector the server sends for <paramref name="text"/> before scaling, made unit length.</summary>
    public static float[] ExpectedVector(string text, int dimensions) => new HashEmbeddingProvider(dimensions).Embed(text);

    public Task WriteEmbeddingsAsync(HttpContext context, RecordedRequest request) =>
        WriteJsonAsync(context, 200, EmbeddingsBody(request.Inputs, request.Dimensions ?? DefaultDimensions, Shuffle, Scale));

    public static JsonObject EmbeddingsBody(IReadOnlyList<string> inputs, int dimensions, bool shuffle = false, float scale = 1f)
    {
        var data = new JsonArray();
        var order = Enumerable.Range(0, inputs.Count);
        foreach (var i in shuffle ? order.Reverse() : order)
        {
            var vector = ExpectedVector(inputs[i], dimensions).Select(v => JsonValue.Create(v * scale)).ToArray<JsonNode?>();
            data.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = new JsonArray(vector) });
        }
        return new JsonObject
        {
            ["object"] = "list",
            ["data"] = data,
            ["model"] = "fake",
            ["usage"] = new JsonObject { ["prompt_tokens"] = inputs.Count, ["total_tokens"] = inputs.Count },
        };
    }

    public static async Task WriteJsonAsync(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }

    public static async Task WriteTextAsync(HttpContext context, int status, string body, string contentType = "application/json")
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        await context.Response.WriteAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        // Stalled handlers wait on RequestAborted; a short stop time-out keeps disposal quick.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject
            ?? throw new JsonException("request body is not an object");
        var request = new RecordedRequest(
            Interlocked.Increment(ref _count),
            context.Request.Method,
            context.Request.Path.Value ?? "",
            context.Request.Headers.Authorization.FirstOrDefault(),
            context.Request.ContentType,
            body,
            _clock.Elapsed);
        _requests.Enqueue(request);
        await Handler(context, request);
    }
}
