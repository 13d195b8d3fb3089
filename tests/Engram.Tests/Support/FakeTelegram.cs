using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Support;

/// <summary>
/// A fake Telegram Bot API server for the tests (no internet): a Kestrel app on a free loopback port answering
/// <c>POST /bot{token}/{method}</c> with the real JSON shapes (<c>{"ok":true,"result":...}</c>, errors with
/// <c>error_code</c>, <c>description</c> and <c>parameters.retry_after</c>) for getMe, getUpdates (a long poll that
/// confirms updates below its offset, like Telegram), sendMessage, answerCallbackQuery, setWebhook, deleteWebhook and
/// getWebhookInfo. Tests queue user updates (<see cref="SendText"/>, <see cref="Press"/>), script failures
/// (<see cref="FailNext"/>) and read what the bot sent (<see cref="Calls"/>, <see cref="Sent"/>). Point Engram at it with
/// TELEGRAM_API_BASE_URL = <see cref="BaseUrl"/> and TELEGRAM_BOT_TOKEN = <see cref="Token"/>.
/// </summary>
public sealed class FakeTelegram : IAsyncDisposable
{
    /// <summary>A token of the shape Telegram.Bot checks (bot id, colon, secret).</summary>
    public const string Token = "4242424242:AAFakeTelegramTokenForEngramTests0000";

    public const long BotId = 4242424242;

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<FakeTelegramCall> _calls = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<FakeTelegramFailure>> _failures = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<JsonObject> _updates = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _callMade = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextUpdateId = 1000;
    private int _nextMessageId = 1;

    private FakeTelegram(WebApplication app, int port)
    {
        _app = app;
        BaseUrl = $"http://127.0.0.1:{port}";
    }

    /// <summary>What TELEGRAM_API_BASE_URL gets.</summary>
    public string BaseUrl { get; }

    /// <summary>The URL and secret of the last setWebhook (null after deleteWebhook).</summary>
    public string? WebhookUrl { get; private set; }

    public string? WebhookSecret { get; private set; }

    /// <summary>Every Bot API call received, in order (failed ones included).</summary>
    public IReadOnlyList<FakeTelegramCall> Calls => [.. _calls];

    /// <summary>The messages the bot sent (successful sendMessage calls), in order.</summary>
    public IReadOnlyList<FakeSentMessage> Sent => [.. _calls.Where(c => c is { Method: "sendMessage", Status: 200 }).Select(c => new FakeSentMessage(
        c.Body["chat_id"]!.GetValue<long>(), c.Body["text"]!.GetValue<string>(), c.Body["reply_markup"]?.ToJsonString()))];

    public static async Task<FakeTelegram> StartAsync(int port = 0)
    {
        port = port == 0 ? FreePort() : port;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeTelegram(app, port);
        app.Run(fake.AnswerAsync);
        await app.StartAsync();
        return fake;
    }

    /// <summary>A free loopback port (the fake is also linked into the benchmarks, which have no EngramServer).</summary>
    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Queues a text message from <paramref name="user"/> (in their private chat unless <paramref name="chat"/>); returns its update_id.</summary>
    public int SendText(long user, string text, long? chat = null) => Enqueue(id => new JsonObject
    {
        ["update_id"] = id,
        ["message"] = Message(user, chat ?? user, text, fromBot: false),
    });

    /// <summary>Queues a press of an inline button carrying <paramref name="data"/> by <paramref name="user"/>; returns its update_id.</summary>
    public int Press(long user, string data, long? chat = null) => Enqueue(id => new JsonObject
    {
        ["update_id"] = id,
        ["callback_query"] = new JsonObject
        {
            ["id"] = "cb" + id,
            ["from"] = UserJson(user),
            ["chat_instance"] = "ci" + (chat ?? user),
            ["data"] = data,
            ["message"] = Message(BotId, chat ?? user, "Forget this memory?", fromBot: true),
        },
    });

    /// <summary>Queues an update as written (update_id included), e.g. one Telegram delivers again.</summary>
    public void Redeliver(JsonObject update)
    {
        lock (_lock)
        {
            _updates.Add(update);
            _updates.Sort((a, b) => a["update_id"]!.GetValue<int>().CompareTo(b["update_id"]!.GetValue<int>()));
            Signal(ref _arrived);
        }
    }

    /// <summary>The JSON of a text update without queuing it (for webhook deliveries).</summary>
    public JsonObject TextUpdate(long user, string text)
    {
        var id = Interlocked.Increment(ref _nextUpdateId);
        return new JsonObject { ["update_id"] = id, ["message"] = Message(user, user, text, fromBot: false) };
    }

    /// <summary>The next <paramref name="times"/> calls of <paramref name="method"/> fail with <paramref name="status"/> (429: Too Many Requests with retry_after).</summary>
    public void FailNext(string method, int status = 429, int retryAfterSeconds = 1, int times = 1)
    {
        var queue = _failures.GetOrAdd(method, _ => new ConcurrentQueue<FakeTelegramFailure>());
        for (var i = 0; i < times; i++)
        {
            queue.Enqueue(new FakeTelegramFailure(status, retryAfterSeconds));
        }
    }

    /// <summary>Waits until the bot has sent <paramref name="count"/> messages to <paramref name="chat"/> (all chats when null) and returns them.</summary>
    public async Task<IReadOnlyList<FakeSentMessage>> WaitForSentAsync(int count, long? chat = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            Task next;
            lock (_lock)
            {
                next = _callMade.Task;
            }
            var sent = Sent.Where(m => chat is null || m.ChatId == chat).ToList();
            if (sent.Count >= count)
            {
                return sent;
            }
            try
            {
                await next.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the bot sent {sent.Count} of {count} messages{(chat is null ? "" : $" to chat {chat}")}: " +
                    string.Join(" | ", sent.Select(m => m.Text)));
            }
        }
    }

    /// <summary>Waits until a call of <paramref name="method"/> matching <paramref name="match"/> was received.</summary>
    public async Task<FakeTelegramCall> WaitForCallAsync(string method, Func<FakeTelegramCall, bool>? match = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            Task next;
            lock (_lock)
            {
                next = _callMade.Task;
            }
            if (_calls.FirstOrDefault(c => c.Method == method && c.Status == 200 && (match is null || match(c))) is { } found)
            {
                return found;
            }
            try
            {
                await next.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no {method} call arrived; calls: {string.Join(", ", _calls.Select(c => c.Method + ":" + c.Status))}");
            }
        }
    }

    private int Enqueue(Func<int, JsonObject> build)
    {
        var id = Interlocked.Increment(ref _nextUpdateId);
        lock (_lock)
        {
            _updates.Add(build(id));
            Signal(ref _arrived);
        }
        return id;
    }

    private JsonObject Message(long from, long chat, string text, bool fromBot)
    {
        var message = new JsonObject
        {
            ["message_id"] = Interlocked.Increment(ref _nextMessageId),
            ["from"] = UserJson(from, fromBot),
            ["chat"] = new JsonObject { ["id"] = chat, ["type"] = chat == from || fromBot ? "private" : "group", ["first_name"] = "User" + chat },
            ["date"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["text"] = text,
        };
        if (text.StartsWith('/'))
        {
            var length = text.IndexOf(' ', StringComparison.Ordinal) is var space and > 0 ? space : text.Length;
            message["entities"] = new JsonArray(new JsonObject { ["offset"] = 0, ["length"] = length, ["type"] = "bot_command" });
        }
        return message;
    }

    private static JsonObject UserJson(long id, bool bot = false) => new()
    {
        ["id"] = id,
        ["is_bot"] = bot,
        ["first_name"] = bot ? "Engram Test Bot" : "User" + id,
        ["username"] = bot ? "engram_test_bot" : "user" + id,
    };

    private static void Signal(ref TaskCompletionSource source)
    {
        var old = source;
        source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        old.TrySetResult();
    }

    private async Task AnswerAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var prefix = "/bot" + Token + "/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            await WriteAsync(context, 404, Error(404, "Not Found"));
            return;
        }
        var method = path[prefix.Length..];
        var body = await ReadBodyAsync(context.Request);
        var (status, answer) = _failures.TryGetValue(method, out var failures) && failures.TryDequeue(out var failure)
            ? (failure.Status, Error(failure.Status, failure.Status == 429 ? $"Too Many Requests: retry after {failure.RetryAfterSeconds}" : "Internal Server Error",
                failure.Status == 429 ? failure.RetryAfterSeconds : null))
            : await AnswerMethodAsync(method, body, context.RequestAborted);
        Record(new FakeTelegramCall(method, body, status, DateTimeOffset.UtcNow));
        try
        {
            await WriteAsync(context, status, answer);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // the bot gave up on the request (a stop during a long poll)
        }
    }

    private void Record(FakeTelegramCall call)
    {
        lock (_lock)
        {
            _calls.Enqueue(call);
            Signal(ref _callMade);
        }
    }

    private async Task<(int Status, JsonObject Answer)> AnswerMethodAsync(string method, JsonObject body, CancellationToken aborted)
    {
        switch (method)
        {
            case "getMe":
                return (200, Ok(UserJson(BotId, bot: true)));
            case "getUpdates":
                if (WebhookUrl is not null)
                {
                    return (409, Error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"));
                }
                return (200, Ok(await PollAsync(body, aborted)));
            case "sendMessage":
                if (body["chat_id"] is null || body["text"]?.GetValue<string>() is not { Length: > 0 and <= 4096 })
                {
                    return (400, Error(400, "Bad Request: message text is empty or too long"));
                }
                return (200, Ok(Message(BotId, body["chat_id"]!.GetValue<long>(), body["text"]!.GetValue<string>(), fromBot: true)));
            case "answerCallbackQuery":
                return (200, Ok(true));
            case "setWebhook":
                WebhookUrl = body["url"]?.GetValue<string>();
                WebhookSecret = body["secret_token"]?.GetValue<string>();
                return (200, Ok(true, "Webhook was set"));
            case "deleteWebhook":
                WebhookUrl = null;
                WebhookSecret = null;
                return (200, Ok(true, "Webhook was deleted"));
            case "getWebhookInfo":
                return (200, Ok(new JsonObject { ["url"] = WebhookUrl ?? "", ["has_custom_certificate"] = false, ["pending_update_count"] = 0 }));
            default:
                return (404, Error(404, "Not Found: method not found"));
        }
    }

    /// <summary>getUpdates: forgets updates below the offset (confirmed), then answers those at or above it, waiting up to timeout seconds for one.</summary>
    private async Task<JsonArray> PollAsync(JsonObject body, CancellationToken aborted)
    {
        var offset = body["offset"]?.GetValue<int>();
        var timeout = body["timeout"]?.GetValue<int>() ?? 0;
        var limit = body["limit"]?.GetValue<int>() ?? 100;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        cts.CancelAfter(TimeSpan.FromSeconds(timeout));
        while (true)
        {
            Task arrived;
            lock (_lock)
            {
                if (offset is { } confirmed)
                {
                    _updates.RemoveAll(u => u["update_id"]!.GetValue<int>() < confirmed);
                }
                if (_updates.Count > 0)
                {
                    return new JsonArray([.. _updates.Take(limit).Select(u => (JsonNode)u.DeepClone())]);
                }
                arrived = _arrived.Task;
            }
            try
            {
                await arrived.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                return [];
            }
        }
    }

    private static async Task<JsonObject> ReadBodyAsync(HttpRequest request)
    {
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync();
            var result = new JsonObject();
            foreach (var (key, value) in form)
            {
                result[key] = JsonNode.Parse(value.ToString()) ?? JsonValue.Create(value.ToString());
            }
            return result;
        }
        using var reader = new StreamReader(request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        return text.Length == 0 ? [] : JsonNode.Parse(text) as JsonObject ?? [];
    }

    private static JsonObject Ok(JsonNode? result, string? description = null)
    {
        var answer = new JsonObject { ["ok"] = true, ["result"] = result };
        if (description is not null)
        {
            answer["description"] = description;
        }
        return answer;
    }

    private static JsonObject Error(int code, string description, int? retryAfter = null)
    {
        var answer = new JsonObject { ["ok"] = false, ["error_code"] = code, ["description"] = description };
        if (retryAfter is { } seconds)
        {
            answer["parameters"] = new JsonObject { ["retry_after"] = seconds };
        }
        return answer;
    }

    private static async Task WriteAsync(HttpContext context, int status, JsonObject answer)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(answer.ToJsonString());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One Bot API call the fake received: the method, its parameters, and the status it answered.</summary>
public sealed record FakeTelegramCall(string Method, JsonObject Body, int Status, DateTimeOffset At);

/// <summary>A message the bot sent: the chat, the text, and the inline keyboard as JSON (null when none).</summary>
public sealed record FakeSentMessage(long ChatId, string Text, string? ReplyMarkup);

/// <summary>A scripted failure of a Bot API call.</summary>
public sealed record FakeTelegramFailure(int Status, int RetryAfterSeconds);
