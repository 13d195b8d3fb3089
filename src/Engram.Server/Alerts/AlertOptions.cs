using System.Globalization;

namespace Engram.Server.Alerts;

/// <summary>
/// Alerts evaluated inside Engram (<c>Engram:Alerts</c>): on when <see cref="Enabled"/> is set or a channel is configured
/// (Telegram chat ids with TELEGRAM_BOT_TOKEN, or a webhook URL). Every alert is also logged and recorded.
/// </summary>
public sealed class AlertOptions
{
    /// <summary>Evaluate alerts even without a channel (log and GET /v1/admin/alerts only).</summary>
    public bool Enabled { get; set; }

    /// <summary>Telegram chat ids the alerts go to, comma-separated (ALERT_TELEGRAM_CHAT_IDS); needs TELEGRAM_BOT_TOKEN.</summary>
    public string? TelegramChatIds { get; set; }

    /// <summary>A URL each alert is POSTed to as signed JSON (ALERT_WEBHOOK_URL).</summary>
    public string? WebhookUrl { get; set; }

    /// <summary>The HMAC-SHA256 key of the alert webhook's signature (ALERT_WEBHOOK_SECRET); required with <see cref="WebhookUrl"/>.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>How often the rules are evaluated (ALERT_INTERVAL_SECONDS).</summary>
    public int EvaluationIntervalSeconds { get; set; } = 30;

    /// <summary>After an alert's message, the same alert sends no new one for this long (ALERT_COOLDOWN_MINUTES).</summary>
    public double CooldownMinutes { get; set; } = 15;

    /// <summary>memory_high fires at this share of the memory budget (critical from <see cref="MemoryCriticalRatio"/>).</summary>
    public double MemoryWarningRatio { get; set; } = 0.85;

    public double MemoryCriticalRatio { get; set; } = 0.95;

    /// <summary>write_errors fires when this many writes failed (5xx: store errors, read-only, shedding) within one interval.</summary>
    public int WriteErrors { get; set; } = 5;

    /// <summary>search_slow fires (warning) when the p95 of the searches of the last interval (at least 5) is above this.</summary>
    public int SearchP95Milliseconds { get; set; } = 1000;

    /// <summary>search_slow is critical above this p95 (never below the warning threshold: the higher of the two counts).</summary>
    public int SearchP95CriticalMilliseconds { get; set; } = 5000;

    /// <summary>index_lag fires (warning) when the indexes trail the change log by more than this many changes.</summary>
    public int IndexLag { get; set; } = 1000;

    /// <summary>index_lag is critical above this many changes (at least the warning threshold).</summary>
    public int IndexLagCritical { get; set; } = 10_000;

    /// <summary>backup_stale fires when scheduled backups are on and the last good one is older than this.</summary>
    public double BackupMaxAgeHours { get; set; } = 26;

    /// <summary>disk_low fires (warning) below this much free space on the data folder's disk.</summary>
    public int MinFreeDiskMB { get; set; } = 2048;

    /// <summary>disk_low is critical below this much free space (at most the warning threshold: the lower of the two counts).</summary>
    public int MinFreeDiskCriticalMB { get; set; } = 1024;

    /// <summary>Alert events kept in the data folder's alerts.json (GET /v1/admin/alerts); the oldest go first.</summary>
    public int MaxRecords { get; set; } = 500;

    public bool IsOn => Enabled || ChatIds.Count > 0 || !string.IsNullOrWhiteSpace(WebhookUrl);

    public IReadOnlyList<long> ChatIds => (TelegramChatIds ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p => long.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id) ? id : 0).Where(id => id != 0).ToList();

    public IEnumerable<string> Validate(bool telegramEnabled)
    {
        foreach (var part in (TelegramChatIds ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!long.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id) || id == 0)
            {
                yield return $"Engram:Alerts:TelegramChatIds (ALERT_TELEGRAM_CHAT_IDS) must be comma-separated Telegram chat ids (got '{part}')";
            }
        }
        if (ChatIds.Count > 0 && !telegramEnabled)
        {
            yield return "Engram:Alerts:TelegramChatIds (ALERT_TELEGRAM_CHAT_IDS) needs the bot token (TELEGRAM_BOT_TOKEN)";
        }
        if (WebhookUrl is { Length: > 0 } url)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                yield return "Engram:Alerts:WebhookUrl (ALERT_WEBHOOK_URL) must be an http(s) URL";
            }
            if (string.IsNullOrEmpty(WebhookSecret) || WebhookSecret.Length < 16)
            {
                yield return "Engram:Alerts:WebhookSecret (ALERT_WEBHOOK_SECRET) must be set, at least 16 characters, with a webhook URL";
            }
        }
        if (EvaluationIntervalSeconds is < 1 or > 86_400)
        {
            yield return "Engram:Alerts:EvaluationIntervalSeconds (ALERT_INTERVAL_SECONDS) must be between 1 and 86400";
        }
        if (CooldownMinutes is < 0 or > 10_080 || double.IsNaN(CooldownMinutes))
        {
            yield return "Engram:Alerts:CooldownMinutes (ALERT_COOLDOWN_MINUTES) must be between 0 and 10080";
        }
        if (!(MemoryWarningRatio is > 0 and <= 1) || !(MemoryCriticalRatio >= MemoryWarningRatio && MemoryCriticalRatio <= 1))
        {
            yield return "Engram:Alerts:MemoryWarningRatio and MemoryCriticalRatio must be in (0, 1], the critical one at least the warning one";
        }
        if (WriteErrors < 1 || SearchP95Milliseconds < 1 || IndexLag < 0 || MinFreeDiskMB < 0 || !(BackupMaxAgeHours > 0))
        {
            yield return "Engram:Alerts: WriteErrors and SearchP95Milliseconds must be at least 1, IndexLag and MinFreeDiskMB 0 or more, BackupMaxAgeHours above 0";
        }
        if (SearchP95CriticalMilliseconds < 1 || IndexLagCritical < 0 || MinFreeDiskCriticalMB < 0)
        {
            yield return "Engram:Alerts: SearchP95CriticalMilliseconds must be at least 1, IndexLagCritical and MinFreeDiskCriticalMB 0 or more";
        }
        if (MaxRecords is < 10 or > 100_000)
        {
            yield return "Engram:Alerts:MaxRecords must be between 10 and 100000";
        }
    }
}
