using System.Text.Json;
using System.Threading.Channels;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Alerts;

/// <summary>
/// A Telegram Bot API double for the alert channel: <c>POST /bot{token}/sendMessage</c> (and getMe) with the real JSON
/// shapes, on loopback Kestrel. Keeps every message sent; the first <see cref="TooManyRequests"/> calls get Telegram's
/// 429 with <c>parameters.retry_after</c>.
/// </summary>
public sealed class FakeTelegramApi : IAsyncDisposable
{
    public const string Token = "123456:TEST-alerts-token";

    private readonly WebApplication _app;
    private readonly Channel<SentMessage> _sent = Channel.CreateUnbounded<SentMessage>();
    private int _messageId;
    private int _count;

    private FakeTelegramApi(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    /// <summary>How many sendMessage calls still get a 429 before they succeed.</summary>
    public int TooManyRequests;

    public int Count => Volatile.Read(ref _count);

    public static async Task<FakeTelegramApi> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{EngramServer.FreePort()}");
        var app = builder.Build();
        var api = new FakeTelegramApi(app);
        app.MapPost($"/bot{Token}/getMe", () => Results.Json(new { ok = true, result = new { id = 123456, is_bot = true, first_name = "Engram", username = "engram_test_bot" } }));
        app.MapPost($"/bot{Token}/sendMessage", (Delegate)api.SendMessageAsync);
        app.MapFallback((HttpContext http) => Results.Json(new { ok = false, error_code = 404, description = "Not Found" }, statusCode: 404));
        await app.StartAsync();
        api.Url = app.Urls.Single().TrimEnd('/');
        return api;
    }

    private async Task<IResult> SendMessageAsync(HttpContext http)
    {
        using var body = await JsonDocument.ParseAsync(http.Request.Body);
        if (Interlocked.Decrement(ref TooManyRequests) >= 0)
        {
            return Results.Json(new { ok = false, error_code = 429, description = "Too Many Requests: retry after 1", parameters = new { retry_after = 1 } }, statusCode: 429);
        }
        var chatId = body.RootElement.GetProperty("chat_id").GetInt64();
        var text = body.RootElement.GetProperty("text").GetString()!;
        Interlocked.Increment(ref _count);
        await _sent.Writer.WriteAsync(new SentMessage(chatId, text));
        return Results.Json(new
        {
            ok = true,
            result = new
            {
                message_id = Interlocked.Increment(ref _messageId),
                date = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                chat = new { id = chatId, type = chatId < 0 ? "group" : "private", title = chatId < 0 ? "ops" : null },
                from = new { id = 123456, is_bot = true, first_name = "Engram" },
                text,
            },
        });
    }

    /// <summary>The next message sent (in order), waiting up to 30 s.</summary>
    public async Task<SentMessage> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await _sent.Reader.ReadAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed record SentMessage(long ChatId, string Text);
}
