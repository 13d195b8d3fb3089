namespace Engram.Server.Webhooks;

/// <summary>
/// Memory-event webhooks (<c>Engram:Webhooks</c>): every memory created, updated or deleted (any tenant) is POSTed as
/// signed JSON to each of <see cref="Urls"/>, from a background queue that follows the change log.
/// </summary>
public sealed class WebhookOptions
{
    public const string Created = "memory.created";
    public const string Updated = "memory.updated";
    public const string Deleted = "memory.deleted";

    /// <summary>Optional, off unless <see cref="Events"/> names it: one event per answered search (any route).</summary>
    public const string SearchPerformed = "search.performed";

    /// <summary>Receivers, comma-separated (WEBHOOK_URLS); none: off.</summary>
    public string? Urls { get; set; }

    /// <summary>The HMAC-SHA256 key of the signature header (WEBHOOK_SECRET), at least 16 characters.</summary>
    public string? Secret { get; set; }

    /// <summary>The events sent, comma-separated (WEBHOOK_EVENTS); default the three memory events (search.performed only when named).</summary>
    public string Events { get; set; } = $"{Created},{Updated},{Deleted}";

    /// <summary>Attempts per delivery before it goes to the dead-letter list.</summary>
    public int MaxAttempts { get; set; } = 6;

    /// <summary>The first retry's delay; each next one doubles (capped at 5 minutes).</summary>
    public int RetryBaseMilliseconds { get; set; } = 2000;

    /// <summary>One attempt's time limit.</summary>
    public int TimeoutSeconds { get; set; } = 10;

    /// <summary>Deliveries waiting at most; past it the change log is read no further until they drain (writes never wait).</summary>
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>
    /// search.performed events waiting to become deliveries, at most: a search only offers its event to this queue and
    /// never waits; when it is full the event is dropped and counted (engram_webhook_search_events_dropped_total).
    /// </summary>
    public int SearchQueueCapacity { get; set; } = 1000;

    /// <summary>Finished deliveries kept in the log, and dead letters kept.</summary>
    public int LogSize { get; set; } = 1000;

    public IReadOnlyList<Uri> Receivers => (Urls ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) ? uri : null).OfType<Uri>().ToList();

    public IReadOnlySet<string> EventSet => Events.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    public bool Enabled => Receivers.Count > 0;

    public IEnumerable<string> Validate()
    {
        foreach (var url in (Urls ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                yield return $"Engram:Webhooks:Urls (WEBHOOK_URLS) must be comma-separated http(s) URLs (got '{url}')";
            }
        }
        if (!string.IsNullOrWhiteSpace(Urls) && (string.IsNullOrEmpty(Secret) || Secret.Length < 16))
        {
            yield return "Engram:Webhooks:Secret (WEBHOOK_SECRET) must be set, at least 16 characters, with webhook URLs";
        }
        foreach (var name in EventSet.Where(e => e is not (Created or Updated or Deleted or SearchPerformed)))
        {
            yield return $"Engram:Webhooks:Events (WEBHOOK_EVENTS): unknown event '{name}' (known: {Created}, {Updated}, {Deleted}, {SearchPerformed})";
        }
        if (SearchQueueCapacity is < 1 or > 1_000_000)
        {
            yield return "Engram:Webhooks:SearchQueueCapacity must be 1-1000000";
        }
        if (MaxAttempts is < 1 or > 50 || RetryBaseMilliseconds is < 10 or > 600_000 || TimeoutSeconds is < 1 or > 300)
        {
            yield return "Engram:Webhooks: MaxAttempts must be 1-50, RetryBaseMilliseconds 10-600000, TimeoutSeconds 1-300";
        }
        if (QueueCapacity is < 10 or > 1_000_000 || LogSize is < 10 or > 100_000)
        {
            yield return "Engram:Webhooks: QueueCapacity must be 10-1000000 and LogSize 10-100000";
        }
    }
}
