using Engram.Core.KeyValue;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Telegram.Bot;
using Telegram.Bot.Exceptions;
using Telegram.Bot.Types;
using Telegram.Bot.Types.Enums;

namespace Engram.Server.Telegram;

/// <summary>
/// The Telegram chat bot (issue 19), a hosted service that runs when TELEGRAM_BOT_TOKEN is set. It takes updates by
/// long polling (getUpdates with a time-out) or, when TELEGRAM_WEBHOOK_URL is set, registers that URL with setWebhook
/// and a secret token and takes them from <c>POST /v1/telegram/webhook</c> (<see cref="TelegramWebhookEndpoint"/>).
/// Updates are taken one at a time, in order: the offset past each is saved before it is handled (<see cref="TelegramOffsets"/>),
/// and an update below it is skipped, so each is handled at most once, across restarts. They are handled by
/// <see cref="TelegramConversation"/> per chat: one chat's updates in order, different chats at once (at most
/// <see cref="MaxHandlers"/>, with <see cref="MaxUnhandled"/> taken and waiting).
/// </summary>
internal sealed partial class TelegramBot : BackgroundService
{
    private static readonly UpdateType[] Wanted = [UpdateType.Message, UpdateType.CallbackQuery];

    private readonly TelegramOptions _options;
    private readonly TelegramOffsets _offsets;
    private readonly TelegramConversation _conversation;
    private readonly TelegramRetry _retry;
    private readonly ILogger<TelegramBot> _logger;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _turn = new(1, 1);
    /// <summary>Updates taken and not handled yet, at most <see cref="MaxUnhandled"/>: polling waits for room.</summary>
    private readonly SemaphoreSlim _room = new(MaxUnhandled, MaxUnhandled);
    /// <summary>Updates handled at once, across chats (each a model call and a few store calls).</summary>
    private readonly SemaphoreSlim _handlers = new(MaxHandlers, MaxHandlers);
    /// <summary>
    /// Per chat with updates not yet handled: the last one's handling (the next of the chat runs after it, so a chat keeps
    /// its order) and how many are queued (the chat is forgotten at 0).
    /// </summary>
    private readonly Dictionary<long, (Task Tail, int Queued)> _chats = [];

    private const int MaxUnhandled = 256;
    private const int MaxHandlers = 8;
    private readonly TaskCompletionSource _offsetLoaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long? _offset;

    public TelegramBot(IOptions<EngramServerOptions> options, IKeyValueStore keyValue, TelegramConversation conversation, ILogger<TelegramBot> logger)
    {
        _options = options.Value.Telegram;
        _logger = logger;
        // A client of its own: the long poll holds a request open for PollTimeoutSeconds, so its time-out is longer.
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(_options.PollTimeoutSeconds + 30) };
        Client = new TelegramBotClient(new TelegramBotClientOptions(_options.BotToken!, string.IsNullOrWhiteSpace(_options.ApiBaseUrl) ? null : _options.ApiBaseUrl.TrimEnd('/'))
        {
            RetryCount = 0, // retries are TelegramRetry's, which also covers network errors and 5xx
        }, _http);
        _offsets = new TelegramOffsets(keyValue, Client.BotId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _retry = new TelegramRetry(logger);
        _conversation = conversation;
        WebhookSecret = _options.UsesWebhook
            ? string.IsNullOrEmpty(_options.WebhookSecret) ? Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) : _options.WebhookSecret
            : null;
    }

    public TelegramBotClient Client { get; }

    /// <summary>The secret token Telegram must send with webhook updates; null in long-polling mode.</summary>
    public string? WebhookSecret { get; }

    /// <summary>Updates handled since the start (skipped ones not counted).</summary>
    public long Handled => Interlocked.Read(ref _handled);

    private long _handled;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            _offset = await WithStoreRetryAsync(_offsets.LoadAsync, stoppingToken);
            _offsetLoaded.TrySetResult();
            if (_options.AllowedUserIds.Count == 0 && _options.AdminIds.Count == 0)
            {
                LogNobodyAllowed(_logger);
            }
            if (WebhookSecret is not null)
            {
                await _retry.RunAsync("setWebhook", token => Client.SetWebhook(_options.WebhookUrl!, secretToken: WebhookSecret, allowedUpdates: Wanted, cancellationToken: token),
                    stoppingToken);
                LogWebhook(_logger, _options.WebhookUrl!);
                return;
            }
            // getUpdates is refused while a webhook is set (a previous configuration): remove it, keeping its pending updates.
            await _retry.RunAsync("deleteWebhook", token => Client.DeleteWebhook(cancellationToken: token), stoppingToken);
            LogPolling(_logger, _options.PollTimeoutSeconds);
            try
            {
                await PollAsync(stoppingToken);
            }
            finally
            {
                // The updates still being handled see the stop too; they end before the services they use are disposed.
                Task[] handling;
                lock (_chats)
                {
                    handling = [.. _chats.Values.Select(c => c.Tail)];
                }
                await Task.WhenAll(handling).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogStopped(_logger, ex);
        }
    }

    private async Task PollAsync(CancellationToken ct)
    {
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            Update[] updates;
            try
            {
                updates = await Client.GetUpdates(offset: (int?)_offset, limit: 100, timeout: _options.PollTimeoutSeconds, allowedUpdates: Wanted, cancellationToken: ct);
                failures = 0;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Polling never gives up: a 429 waits its retry_after, anything else backs off (a bad token too, slowly).
                failures++;
                var delay = TelegramRetry.DelayFor(ex, failures) ?? TimeSpan.FromSeconds(60);
                LogPollFailed(_logger, failures, delay.TotalMilliseconds, ex.Message);
                await Task.Delay(delay, ct);
                continue;
            }
            foreach (var update in updates)
            {
                // Not awaited: the next updates are taken while this one's model answers (other chats go on).
                _ = await TakeAsync(update, ct);
            }
        }
    }

    /// <summary>
    /// Handles one update unless it was handled before (its id below the saved offset), then saves the offset past it;
    /// returns once it is handled (the webhook answers Telegram then).
    /// </summary>
    public async Task HandleAsync(Update update, CancellationToken ct) => await await TakeAsync(update, ct);

    /// <summary>
    /// Takes an update in order: checks and saves the offset, then queues the handling behind the same chat's earlier
    /// updates and returns it. Until session 49 every update was handled inside the turn, so one slow model answer held
    /// every other user's message (polling and webhook alike) for as long as it took.
    /// </summary>
    private async Task<Task> TakeAsync(Update update, CancellationToken ct)
    {
        await _offsetLoaded.Task.WaitAsync(ct);
        await _room.WaitAsync(ct);
        var queued = false;
        await _turn.WaitAsync(ct);
        try
        {
            if (_offset is { } next && update.Id < next)
            {
                LogSkipped(_logger, update.Id);
                return Task.CompletedTask;
            }
            // Saved before the update is handled, and not cut short by a stop: at most once, so a restart (or a crash
            // after the reply went out) never handles it again; a crash while it is handled loses that one update.
            await WithStoreRetryAsync(async _ =>
            {
                await _offsets.SaveAsync(update.Id + 1L, CancellationToken.None);
                return true;
            }, ct);
            _offset = update.Id + 1L;
            var chat = ChatOf(update);
            lock (_chats)
            {
                var (before, count) = _chats.GetValueOrDefault(chat, (Task.CompletedTask, 0));
                var handling = HandleAfterAsync(before, chat, update, ct);
                _chats[chat] = (handling, count + 1);
                queued = true;
                return handling;
            }
        }
        finally
        {
            _turn.Release();
            if (!queued)
            {
                _room.Release();
            }
        }
    }

    /// <summary>Handles <paramref name="update"/> once the chat's update before it is handled; never throws.</summary>
    private async Task HandleAfterAsync(Task before, long chat, Update update, CancellationToken ct)
    {
        await Task.Yield(); // off the taker's thread: its chat entry is in place before this can reach the finally below
        await before.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var handling = false;
        try
        {
            await _handlers.WaitAsync(ct);
            handling = true;
            await _conversation.HandleAsync(this, update, ct);
            Interlocked.Increment(ref _handled);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            LogUpdateFailed(_logger, update.Id, ex);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            // Stopping: the handling was cut short (nobody awaits a polled update's task, so nothing may escape it).
        }
        finally
        {
            if (handling)
            {
                _handlers.Release();
            }
            _room.Release();
            lock (_chats)
            {
                // Counted in when queued (under this lock, before this can run): the last one out forgets the chat.
                var (tail, count) = _chats[chat];
                if (count == 1)
                {
                    _chats.Remove(chat);
                }
                else
                {
                    _chats[chat] = (tail, count - 1);
                }
            }
        }
    }

    /// <summary>The chat an update belongs to (its order is kept within it): the message's, else the callback's.</summary>
    private static long ChatOf(Update update) =>
        update.Message?.Chat.Id ?? update.CallbackQuery?.Message?.Chat.Id ?? update.CallbackQuery?.From.Id ?? 0;

    /// <summary>Sends <paramref name="text"/> to a chat, as the messages Telegram takes (<see cref="TelegramText.Reply"/>), each retried on 429 and network errors.</summary>
    public async Task SendAsync(long chatId, string text, global::Telegram.Bot.Types.ReplyMarkups.ReplyMarkup? markup, CancellationToken ct)
    {
        var parts = TelegramText.Reply(text);
        for (var i = 0; i < parts.Count; i++)
        {
            var part = parts[i];
            var last = i == parts.Count - 1;
            await _retry.RunAsync("sendMessage", token => Client.SendMessage(chatId, part, replyMarkup: last ? markup : null, cancellationToken: token), ct);
        }
    }

    public Task AnswerCallbackAsync(string callbackId, string text, CancellationToken ct) =>
        _retry.RunAsync("answerCallbackQuery", token => Client.AnswerCallbackQuery(callbackId, text, cancellationToken: token), ct);

    /// <summary>The offset's store calls, retried while the store is away (it comes back; the update must not be lost meanwhile).</summary>
    private async Task<T> WithStoreRetryAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(ct);
            }
            catch (Exception ex) when (Jobs.StoreOutage.Is(ex) && !ct.IsCancellationRequested)
            {
                var delay = TelegramRetry.Backoff(attempt);
                LogStoreAway(_logger, delay.TotalMilliseconds, ex.Message);
                await Task.Delay(delay, ct);
            }
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _turn.Dispose();
        _http.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Telegram bot: long polling (getUpdates, {Timeout} s)")]
    private static partial void LogPolling(ILogger logger, int timeout);

    [LoggerMessage(Level = LogLevel.Information, Message = "Telegram bot: webhook set to {Url}")]
    private static partial void LogWebhook(ILogger logger, string url);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Telegram bot: TELEGRAM_ALLOWED_USERS and TELEGRAM_ADMINS are empty, so it refuses everyone")]
    private static partial void LogNobodyAllowed(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Telegram getUpdates failed ({Failures} in a row), polling again in {DelayMs:0} ms: {Error}")]
    private static partial void LogPollFailed(ILogger logger, int failures, double delayMs, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Telegram update {Id} was handled before; skipped")]
    private static partial void LogSkipped(ILogger logger, int id);

    [LoggerMessage(Level = LogLevel.Error, Message = "Telegram update {Id} failed")]
    private static partial void LogUpdateFailed(ILogger logger, int id, Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Telegram bot: the store is away, saving the offset again in {DelayMs:0} ms: {Error}")]
    private static partial void LogStoreAway(ILogger logger, double delayMs, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Telegram bot stopped")]
    private static partial void LogStopped(ILogger logger, Exception error);
}
