using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Support;

/// <summary>
/// A deterministic OpenAI-compatible chat endpoint for the tests (no real model runs here): a Kestrel app on a free
/// loopback port answering <c>POST /v1/chat/completions</c>, plain or streamed (server-sent events), from a script of
/// replies taken in order and then from <see cref="Responder"/>. Every request is recorded. Example:
/// <code>
/// await using var model = await FakeChatModel.StartAsync();
/// model.Enqueue(FakeReply.Error(429, retryAfterSeconds: 1), FakeReply.Text("{\"facts\":[]}"));
/// // point Engram at model.BaseUrl (LLM_BASE_URL) with any model name
/// </code>
/// </summary>
public sealed class FakeChatModel : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<FakeReply> _script = new();
    private readonly ConcurrentQueue<FakeRequest> _requests = new();
    private int _inFlight;
    private int _maxInFlight;

    private FakeChatModel(WebApplication app, int port)
    {
        _app = app;
        BaseUrl = $"http://127.0.0.1:{port}/v1";
        Port = port;
    }

    /// <summary>What LLM_BASE_URL gets: <c>http://127.0.0.1:PORT/v1</c>.</summary>
    public string BaseUrl { get; }

    public int Port { get; }

    /// <summary>Answers a request once the script is used up; by default an echo of the last user message.</summary>
    public Func<FakeRequest, FakeReply> Responder { get; set; } = request => FakeReply.Text("echo: " + request.LastUserText);

    /// <summary>The requests received, in order.</summary>
    public IReadOnlyList<FakeRequest> Requests => [.. _requests];

    /// <summary>The first request that <paramref name="match"/> takes, once it has arrived (it is recorded before it is answered).</summary>
    public async Task<FakeRequest> WaitForRequestAsync(Func<FakeRequest, bool> match, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (_requests.FirstOrDefault(match) is { } found)
            {
                return found;
            }
            try
            {
                await Task.Delay(20, deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no matching request reached the fake model in time");
            }
        }
    }

    /// <summary>The most requests that were being answered at once.</summary>
    public int MaxConcurrentRequests => Volatile.Read(ref _maxInFlight);

    public void Enqueue(params FakeReply[] replies)
    {
        foreach (var reply in replies)
        {
            _script.Enqueue(reply);
        }
    }

    /// <param name="port">A port to listen on (to come back on the same one after a stop); a free one when 0.</param>
    public static async Task<FakeChatModel> StartAsync(int port = 0)
    {
        port = port == 0 ? EngramServer.FreePort() : port;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var model = new FakeChatModel(app, port);
        app.MapPost("/v1/chat/completions", model.AnswerAsync);
        await app.StartAsync();
        return model;
    }

    private async Task AnswerAsync(HttpContext context)
    {
        var now = Interlocked.Increment(ref _inFlight);
        for (var max = Volatile.Read(ref _maxInFlight); now > max && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max; max = Volatile.Read(ref _maxInFlight))
        {
        }
        try
        {
            await ReplyAsync(context);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task ReplyAsync(HttpContext context)
    {
        using var document = await JsonDocument.ParseAsync(context.Request.Body);
        var request = new FakeRequest(document.RootElement.Clone(), context.Request.Headers.Authorization.ToString(), DateTimeOffset.UtcNow);
        _requests.Enqueue(request);
        var reply = _script.TryDequeue(out var scripted) ? scripted : Responder(request);
        if (reply.Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(reply.Delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        foreach (var (name, value) in reply.Headers)
        {
            context.Response.Headers[name] = value;
        }
        context.Response.StatusCode = reply.Status;
        if (reply.Status != 200)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(reply.RawBody ?? JsonSerializer.Serialize(new { error = new { message = reply.Content ?? "scripted failure", type = "server_error" } }));
            return;
        }
        var model = request.Body.TryGetProperty("model", out var m) ? m.GetString() : "fake";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (reply.RawBytes is not null)
        {
            // Bytes as they are, streamed or not: invalid UTF-8, events that are not chunks.
            context.Response.ContentType = reply.Headers.TryGetValue("Content-Type", out var given) ? given : request.Stream ? "text/event-stream" : "application/json";
            await context.Response.Body.WriteAsync(reply.RawBytes);
            return;
        }
        if (request.Stream)
        {
            context.Response.ContentType = "text/event-stream";
            var pieces = reply.Chunks ?? Split(reply.Content ?? "");
            for (var i = 0; i < pieces.Count; i++)
            {
                var chunk = new
                {
                    id = "chatcmpl-fake",
                    @object = "chat.completion.chunk",
                    created,
                    model,
                    choices = new[] { new { index = 0, delta = (object)(i == 0 ? new { role = "assistant", content = pieces[i] } : new { content = pieces[i] }), finish_reason = (string?)null } },
                };
                await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk) + "\n\n");
                await context.Response.Body.FlushAsync();
                if (reply.ChunkDelay > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(reply.ChunkDelay, context.RequestAborted);
                    }
                    catch (OperationCanceledException)
                    {
                        return; // the caller hung up (a proxy that cut the model off): no more to send
                    }
                }
            }
            var last = new { id = "chatcmpl-fake", @object = "chat.completion.chunk", created, model, choices = new[] { new { index = 0, delta = new { }, finish_reason = "stop" } } };
            await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(last) + "\n\ndata: [DONE]\n\n");
            return;
        }
        context.Response.ContentType = "application/json";
        if (reply.RawBody is not null)
        {
            await context.Response.WriteAsync(reply.RawBody);
            return;
        }
        var body = new
        {
            id = "chatcmpl-fake",
            @object = "chat.completion",
            created,
            model,
            choices = new[] { new { index = 0, message = new { role = "assistant", content = reply.Content ?? "" }, finish_reason = "stop" } },
            usage = new { prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
        };
        await context.Response.WriteAsync(JsonSerializer.Serialize(body));
    }

    private static List<string> Split(string content)
    {
        var pieces = new List<string>();
        for (var i = 0; i < content.Length; i += 8)
        {
            pieces.Add(content.Substring(i, Math.Min(8, content.Length - i)));
        }
        return pieces.Count == 0 ? [""] : pieces;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>A request the fake model received.</summary>
public sealed record FakeRequest(JsonElement Body, string Authorization, DateTimeOffset ReceivedAt)
{
    public bool Stream => Body.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;

    /// <summary><c>response_format.type</c> (json_schema, json_object), or null.</summary>
    public string? ResponseFormat => Body.TryGetProperty("response_format", out var f) && f.TryGetProperty("type", out var t) ? t.GetString() : null;

    public IReadOnlyList<(string Role, string Content)> Messages =>
        [.. Body.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString()!, ContentOf(m)))];

    public string LastUserText => Messages.LastOrDefault(m => m.Role == "user").Content ?? "";

    /// <summary>Every message's text, joined: what a test searches for what the prompt held.</summary>
    public string AllText => string.Join("\n", Messages.Select(m => m.Content));

    private static string ContentOf(JsonElement message) =>
        !message.TryGetProperty("content", out var content) ? ""
        : content.ValueKind == JsonValueKind.String ? content.GetString()!
        : content.ValueKind == JsonValueKind.Array ? string.Concat(content.EnumerateArray().Select(p => p.TryGetProperty("text", out var t) ? t.GetString() : ""))
        : "";
}

/// <summary>A scripted answer: a text (or a raw body), an HTTP status with headers, a delay, streamed chunks.</summary>
public sealed record FakeReply
{
    public string? Content { get; init; }

    public string? RawBody { get; init; }

    /// <summary>A body sent byte for byte (also for a streamed request), for answers a string cannot hold.</summary>
    public byte[]? RawBytes { get; init; }

    public int Status { get; init; } = 200;

    public TimeSpan Delay { get; init; }

    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>For a streamed answer: the content pieces, one event each (default: 8 characters at a time).</summary>
    public IReadOnlyList<string>? Chunks { get; init; }

    public TimeSpan ChunkDelay { get; init; }

    public static FakeReply Text(string content) => new() { Content = content };

    /// <summary>An object serialised as the answer's text (what a model following the schema would say).</summary>
    public static FakeReply Json(object value) => new() { Content = JsonSerializer.Serialize(value) };

    public static FakeReply Error(int status, int? retryAfterSeconds = null, string? message = null) => new()
    {
        Status = status,
        Content = message,
        Headers = retryAfterSeconds is { } seconds
            ? new Dictionary<string, string> { ["Retry-After"] = seconds.ToString(CultureInfo.InvariantCulture) }
            : new Dictionary<string, string>(),
    };
}
