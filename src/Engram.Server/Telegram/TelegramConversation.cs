using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Server.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Telegram.Bot.Types;
using Telegram.Bot.Types.ReplyMarkups;

namespace Engram.Server.Telegram;

/// <summary>
/// What the bot says (issue 19): the commands, plain messages (chat with memory when a model is configured) and the
/// forget confirmation button. Every Telegram user works as a caller of the default tenant confined to the scope
/// <c>user_id=telegram:&lt;id&gt;</c> (as a scoped API key would be), through the same services as REST, so one user's
/// memories never reach another. Only allowed users and admins are served; each user has a per-minute message budget.
/// </summary>
internal sealed partial class TelegramConversation(IOptions<EngramServerOptions> options, MemoryService memories, SearchService search, LlmAccess llm,
    TimeProvider clock, ILogger<TelegramConversation> logger)
{
    /// <summary>Results /recall and /list show.</summary>
    public const int ResultCount = 5;

    public const int ListCount = 10;

    private const string ForgetPrefix = "forget:";
    private const string KeepData = "keep";

    private readonly TelegramOptions _options = options.Value.Telegram;
    private readonly IReadOnlySet<long> _allowed = options.Value.Telegram.AllowedUserIds;
    private readonly IReadOnlySet<long> _admins = options.Value.Telegram.AdminIds;
    private readonly ConcurrentDictionary<long, string[]> _lastShown = new();
    private readonly ConcurrentDictionary<long, RateWindow> _rates = new();

    public static string UserIdOf(long telegramUser) => "telegram:" + telegramUser.ToString(CultureInfo.InvariantCulture);

    /// <summary>The caller a Telegram user acts as: the default tenant, confined to the user's own scope.</summary>
    public static Caller CallerOf(long telegramUser) =>
        new(Caller.DefaultTenant, UserIdOf(telegramUser), Role.Write, new KeyScope(UserIdOf(telegramUser), null));

    public async Task HandleAsync(TelegramBot bot, Update update, CancellationToken ct)
    {
        if (update.CallbackQuery is { } callback)
        {
            await OnCallbackAsync(bot, callback, ct);
        }
        else if (update.Message is { From: { } from, Text: { } text } message)
        {
            await OnMessageAsync(bot, message.Chat.Id, from, text, ct);
        }
    }

    private async Task OnMessageAsync(TelegramBot bot, long chat, User from, string text, CancellationToken ct)
    {
        switch (Admit(from.Id))
        {
            case Admission.Silent:
                return;
            case Admission.Slowed:
                await bot.SendAsync(chat, $"You are sending messages faster than {_options.RateLimitPerMinute} a minute; please wait a moment and try again.", null, ct);
                return;
            case Admission.Stranger:
                LogStranger(logger, from.Id);
                await bot.SendAsync(chat, "Sorry, this is a private Engram memory bot and you are not on its list of users. " +
                    $"If you should be, ask its operator to add your Telegram user id ({from.Id.ToString(CultureInfo.InvariantCulture)}) to TELEGRAM_ALLOWED_USERS.", null, ct);
                return;
        }
        var (command, argument) = Parse(text);
        var reply = "";
        InlineKeyboardMarkup? markup = null;
        try
        {
            switch (command)
            {
                case "/start":
                    reply = $"Hello {from.FirstName}! I am Engram, your memory. I keep what you tell me and find it again.\n\n" + Help;
                    break;
                case "/help":
                    reply = Help;
                    break;
                case "/remember":
                    reply = await RememberAsync(from.Id, argument, ct);
                    break;
                case "/recall":
                    reply = await RecallAsync(from.Id, argument, ct);
                    break;
                case "/list":
                    reply = await ListAsync(from.Id, ct);
                    break;
                case "/forget":
                    (reply, markup) = await ForgetAsync(from.Id, argument, ct);
                    break;
                case "/stats":
                    reply = _admins.Contains(from.Id) ? await StatsAsync(ct) : "/stats is for the bot's admins (TELEGRAM_ADMINS).";
                    break;
                case null:
                    reply = await ChatAsync(from.Id, text, ct);
                    break;
                default:
                    reply = $"I do not know {command}.\n\n" + Help;
                    break;
            }
        }
        catch (Exception ex) when (Explain(ex) is { } explained)
        {
            reply = explained;
        }
        await bot.SendAsync(chat, reply, markup, ct);
    }

    private const string Help =
        "/remember <text> – keep a memory\n" +
        "/recall <query> – find memories (the top 5, with dates)\n" +
        "/list – your latest memories\n" +
        "/forget <n> – forget result n of the last /recall or /list (asks first)\n" +
        "/stats – memory counts (admins)\n" +
        "/help – this list\n\n" +
        "Anything else I answer from your memories when Engram has a language model, and remember it.";

    private async Task<string> RememberAsync(long user, string text, CancellationToken ct)
    {
        if (text.Length == 0)
        {
            return "What should I remember? Write it after the command: /remember my passport expires in May";
        }
        var result = await memories.CreateAsync(CallerOf(user), new NewMemory { Content = text, UserId = UserIdOf(user), Source = "telegram" }, ct: ct);
        return result.Duplicate ? "I already remember that." : "Remembered.";
    }

    private async Task<string> RecallAsync(long user, string query, CancellationToken ct)
    {
        if (query.Length == 0)
        {
            return "What should I look for? Write it after the command: /recall passport";
        }
        var result = await search.SearchAsync(CallerOf(user), new SearchRequest
        {
            Query = query,
            K = Math.Min(ResultCount, search.Options.MaxK),
            Filters = new SearchFilters { UserId = UserIdOf(user) },
        }, ct);
        var found = result.Results.Select(r => r.Memory).ToList();
        _lastShown[user] = [.. found.Select(m => m.Id)];
        return found.Count == 0 ? $"I found nothing for \"{TelegramText.Shorten(query, 100)}\"." : Numbered($"What I remember about \"{TelegramText.Shorten(query, 100)}\":", found);
    }

    private async Task<string> ListAsync(long user, CancellationToken ct)
    {
        var page = await memories.ListAsync(CallerOf(user), new MemoryFilter { UserId = UserIdOf(user) }, ListCount, ct: ct);
        _lastShown[user] = [.. page.Items.Select(m => m.Id)];
        if (page.Items.Count == 0)
        {
            return "You have no memories yet. Start with /remember <text>.";
        }
        var text = Numbered(page.NextCursor is null ? "Your memories:" : $"Your first {ListCount} memories (use /recall to search the rest):", page.Items);
        return text;
    }

    private async Task<(string Reply, InlineKeyboardMarkup? Markup)> ForgetAsync(long user, string argument, CancellationToken ct)
    {
        if (!_lastShown.TryGetValue(user, out var shown) || shown.Length == 0)
        {
            return ("Run /recall <query> or /list first, then /forget <n> with the number of the result.", null);
        }
        if (!int.TryParse(argument, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > shown.Length)
        {
            return ($"Which one? Write a number from 1 to {shown.Length}: /forget 1", null);
        }
        var memory = await memories.GetAsync(CallerOf(user), shown[n - 1], ct);
        var buttons = new InlineKeyboardMarkup(
        [
            [InlineKeyboardButton.WithCallbackData("Forget it", ForgetPrefix + memory.Id), InlineKeyboardButton.WithCallbackData("Keep it", KeepData)],
        ]);
        return ($"Forget this memory?\n\n{TelegramText.Shorten(memory.Content, 500)}", buttons);
    }

    private async Task OnCallbackAsync(TelegramBot bot, CallbackQuery callback, CancellationToken ct)
    {
        var user = callback.From.Id;
        if (Admit(user) is not Admission.Allowed)
        {
            await bot.AnswerCallbackAsync(callback.Id, "Sorry, this bot is private.", ct);
            return;
        }
        var chat = callback.Message?.Chat.Id ?? user;
        if (callback.Data is { } data && data.StartsWith(ForgetPrefix, StringComparison.Ordinal))
        {
            string answer;
            string? message = null;
            try
            {
                // The user's own scope: a button of another user's chat (or a forged id) finds nothing to delete.
                var id = data[ForgetPrefix.Length..];
                var memory = await memories.GetAsync(CallerOf(user), id, ct);
                await memories.DeleteAsync(CallerOf(user), id, ct);
                answer = "Forgotten.";
                message = $"Forgotten: {TelegramText.Shorten(memory.Content, 200)}";
            }
            catch (NotFoundException)
            {
                answer = "That memory is already gone.";
            }
            catch (Exception ex) when (Explain(ex) is { } explained)
            {
                answer = TelegramText.Shorten(explained, 190); // callback answers are short
            }
            await bot.AnswerCallbackAsync(callback.Id, answer, ct);
            if (message is not null)
            {
                await bot.SendAsync(chat, message, null, ct);
            }
            return;
        }
        await bot.AnswerCallbackAsync(callback.Id, callback.Data == KeepData ? "Kept." : "Nothing to do.", ct);
    }

    private async Task<string> StatsAsync(CancellationToken ct)
    {
        var stats = await memories.GetStatsAsync(Caller.Default("telegram:admin"), ct);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Memories in the default tenant: {stats.Memories.Total}\n");
        foreach (var (tier, count) in stats.Memories.ByTier.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"  {tier}: {count}\n");
        }
        if (stats.StoreBytes is { } bytes)
        {
            text.Append(CultureInfo.InvariantCulture, $"Store: {bytes / (1024.0 * 1024.0):0.0} MB\n");
        }
        text.Append(CultureInfo.InvariantCulture, $"Bot users allowed: {_allowed.Union(_admins).Count()}; language model: {(llm.IsConfigured ? llm.Model!.Options.Model : "none")}");
        return text.ToString();
    }

    /// <summary>A plain message: answered from the user's memories through the model (as POST /v1/chat), then remembered; without a model, a hint.</summary>
    private async Task<string> ChatAsync(long user, string text, CancellationToken ct)
    {
        if (llm.Model is not { } model)
        {
            return "I keep and find memories through commands: /remember <text> keeps one, /recall <query> finds them. " +
                "(Plain messages are answered when Engram has a language model configured, LLM_BASE_URL.)";
        }
        if (string.IsNullOrWhiteSpace(text))
        {
            return Help;
        }
        var caller = CallerOf(user);
        var answer = await ChatEndpoints.AnswerAsync(search, model, caller, new ChatRequest
        {
            Messages = [new ChatTurn { Role = "user", Content = text }],
            UserId = UserIdOf(user),
        }, ct);
        // White space only is an empty answer too: Telegram refuses to send it, and the user heard nothing.
        var reply = string.IsNullOrWhiteSpace(answer.Answer) ? "(the model gave an empty answer)" : answer.Answer;
        try
        {
            await memories.CreateAsync(caller, new NewMemory { Content = text, UserId = UserIdOf(user), Source = "telegram" }, ct: ct);
        }
        catch (Exception ex) when (Explain(ex) is { } why)
        {
            // The answer stands; only remembering the message failed (read-only mode, the store away): say so, rather
            // than replacing the answer the model gave with the error.
            return $"{reply}\n\n({why} I did not remember this message.)";
        }
        return reply;
    }

    private static string Numbered(string title, IEnumerable<Memory> found)
    {
        var text = new StringBuilder(title);
        var i = 0;
        foreach (var memory in found)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n{++i}. {TelegramText.Shorten(memory.Content, 300)} ({memory.CreatedAt:yyyy-MM-dd})");
        }
        return text.ToString();
    }

    /// <summary>The command (lower case, without @botname) and its argument; a null command for a plain message.</summary>
    internal static (string? Command, string Argument) Parse(string text)
    {
        var trimmed = text.Trim();
        if (!trimmed.StartsWith('/'))
        {
            return (null, trimmed);
        }
        var end = trimmed.IndexOfAny([' ', '\n', '\t']);
        var command = end < 0 ? trimmed : trimmed[..end];
        var at = command.IndexOf('@', StringComparison.Ordinal);
        if (at > 0)
        {
            command = command[..at];
        }
        return (command.ToLowerInvariant(), end < 0 ? "" : trimmed[(end + 1)..].Trim());
    }

    /// <summary>What to tell the user about a failure they can act on (or that passes); null: a bug, logged by the caller.</summary>
    private static string? Explain(Exception error) => error switch
    {
        ValidationException v => "I could not do that: " + v.Message,
        NotFoundException => "I could not find that memory any more.",
        EngramException e => "I could not do that: " + e.Message,
        LlmUnavailableException => "The language model is not answering right now; please try again later.",
        StoreException => "Engram's store is not answering right now; please try again later.",
        _ => null,
    };

    private enum Admission
    {
        Allowed,
        Stranger,
        Slowed,
        Silent,
    }

    /// <summary>Counts the message against the user's per-minute budget, then checks the allow-list.</summary>
    private Admission Admit(long user)
    {
        if (_options.RateLimitPerMinute > 0)
        {
            var now = clock.GetUtcNow();
            if (_rates.Count > 10_000)
            {
                // Bounded: windows that ended are dropped (strangers writing from many accounts cannot grow it without end).
                foreach (var (id, old) in _rates)
                {
                    if (now - old.Start >= TimeSpan.FromMinutes(1))
                    {
                        _rates.TryRemove(id, out _);
                    }
                }
            }
            var window = _rates.AddOrUpdate(user, _ => new RateWindow(now, 1, false),
                (_, w) => now - w.Start >= TimeSpan.FromMinutes(1) ? new RateWindow(now, 1, false) : w with { Count = w.Count + 1 });
            if (window.Count > _options.RateLimitPerMinute)
            {
                // Said once per window; further messages in it are dropped silently.
                if (window.Warned)
                {
                    return Admission.Silent;
                }
                _rates[user] = window with { Warned = true };
                return Admission.Slowed;
            }
        }
        return _allowed.Contains(user) || _admins.Contains(user) ? Admission.Allowed : Admission.Stranger;
    }

    private sealed record RateWindow(DateTimeOffset Start, int Count, bool Warned);

    [LoggerMessage(Level = LogLevel.Information, Message = "Telegram bot: refused user {User} (not in TELEGRAM_ALLOWED_USERS or TELEGRAM_ADMINS)")]
    private static partial void LogStranger(ILogger logger, long user);
}
