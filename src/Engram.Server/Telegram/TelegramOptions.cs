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

    public bool Enabled => !string.IsNullOrWhiteSpace(BotToken);

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
        foreach (var (name, variable, value) in new[] { ("AllowedUsers", "TELEGRAM_ALLOWED_USERS", AllowedUsers), ("Admins", "TELEGRAM_ADMINS", Admins) })
        {
            if (!TryParseIds(value, out _))
            {
                yield return $"Engram:Telegram:{name} ({variable}) must be comma-separated Telegram user ids (numbers)";
            }
        }
    }

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
