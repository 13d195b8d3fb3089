using Telegram.Bot;

namespace Engram.Server.Telegram;

/// <summary>
/// The Telegram Bot API connection (Engram:Telegram), shared by the chat bot and the alert channel:
/// TELEGRAM_BOT_TOKEN enables both, TELEGRAM_API_BASE_URL points them at another Bot API server
/// (a self-hosted one, or a test double), TELEGRAM_ALLOWED_USERS and TELEGRAM_ADMINS are user ids.
/// </summary>
public sealed class TelegramOptions
{
    /// <summary>The bot's token from @BotFather; empty: no bot and no Telegram alerts.</summary>
    public string? BotToken { get; set; }

    /// <summary>The Bot API server; empty: Telegram's own (https://api.telegram.org).</summary>
    public string? ApiBaseUrl { get; set; }

    /// <summary>Telegram user ids allowed to use the bot, comma-separated (TELEGRAM_ALLOWED_USERS).</summary>
    public string? AllowedUsers { get; set; }

    /// <summary>Telegram user ids with admin commands (/stats), comma-separated (TELEGRAM_ADMINS); admins are allowed users too.</summary>
    public string? Admins { get; set; }

    /// <summary>The public https URL Telegram posts updates to (TELEGRAM_WEBHOOK_URL, ending in /v1/telegram/webhook); empty: long polling.</summary>
    public string? WebhookUrl { get; set; }

    /// <summary>The secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (TELEGRAM_WEBHOOK_SECRET); empty: a random one per start.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Messages one Telegram user may send the bot per minute (TELEGRAM_RATE_LIMIT_PER_MINUTE); 0: no limit.</summary>
    public int RateLimitPerMinute { get; set; } = 20;

    /// <summary>How long one getUpdates long poll waits for an update, in seconds (1..50).</summary>
    public int PollTimeoutSeconds { get; set; } = 25;

    public bool Enabled => !string.IsNullOrWhiteSpace(BotToken);

    /// <summary>The bot takes updates through <see cref="WebhookUrl"/> instead of long polling.</summary>
    public bool UsesWebhook => !string.IsNullOrWhiteSpace(WebhookUrl);

    /// <summary>The ids in <see cref="AllowedUsers"/>.</summary>
    public IReadOnlySet<long> AllowedUserIds => ParseIds(AllowedUsers);

    /// <summary>The ids in <see cref="Admins"/>.</summary>
    public IReadOnlySet<long> AdminIds => ParseIds(Admins);

    /// <summary>A Bot API client for the configured token and server.</summary>
    public TelegramBotClient CreateClient(HttpClient? http = null) =>
        new(new TelegramBotClientOptions(BotToken!, string.IsNullOrWhiteSpace(ApiBaseUrl) ? null : ApiBaseUrl.TrimEnd('/')), http);

    public IEnumerable<string> Validate()
    {
        if (!string.IsNullOrWhiteSpace(ApiBaseUrl) && !(Uri.TryCreate(ApiBaseUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
        {
            yield return "Engram:Telegram:ApiBaseUrl (TELEGRAM_API_BASE_URL) must be an http(s) URL";
        }
        if (!string.IsNullOrWhiteSpace(WebhookUrl) && !(Uri.TryCreate(WebhookUrl, UriKind.Absolute, out var hook) && hook.Scheme is "http" or "https"))
        {
            yield return "Engram:Telegram:WebhookUrl (TELEGRAM_WEBHOOK_URL) must be an http(s) URL (Telegram itself takes only https)";
        }
        if (!string.IsNullOrEmpty(WebhookSecret) && !IsSecretToken(WebhookSecret))
        {
            yield return "Engram:Telegram:WebhookSecret (TELEGRAM_WEBHOOK_SECRET) must be 1-256 characters of A-Z, a-z, 0-9, '_' or '-' (Telegram's rule)";
        }
        if (RateLimitPerMinute < 0)
        {
            yield return "Engram:Telegram:RateLimitPerMinute (TELEGRAM_RATE_LIMIT_PER_MINUTE) must be 0 (no limit) or more";
        }
        if (PollTimeoutSeconds is < 1 or > 50)
        {
            yield return "Engram:Telegram:PollTimeoutSeconds must be between 1 and 50";
        }
        foreach (var (name, variable, value) in new[] { ("AllowedUsers", "TELEGRAM_ALLOWED_USERS", AllowedUsers), ("Admins", "TELEGRAM_ADMINS", Admins) })
        {
            if (!TryParseIds(value, out _))
            {
                yield return $"Engram:Telegram:{name} ({variable}) must be comma-separated Telegram user ids (numbers)";
            }
        }
    }

    /// <summary>Telegram's rule for a webhook secret token: 1-256 characters of A-Z, a-z, 0-9, _ and -.</summary>
    public static bool IsSecretToken(string value) =>
        value.Length is >= 1 and <= 256 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    private static IReadOnlySet<long> ParseIds(string? value) => TryParseIds(value, out var ids) ? ids : new HashSet<long>();

    private static bool TryParseIds(string? value, out HashSet<long> ids)
    {
        ids = [];
        foreach (var part in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!long.TryParse(part, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var id))
            {
                return false;
            }
            ids.Add(id);
        }
        return true;
    }
}
