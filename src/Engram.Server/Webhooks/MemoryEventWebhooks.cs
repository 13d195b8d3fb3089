using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Net;
using Engram.Core.Search;
using Engram.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server.Webhooks;

/// <summary>
/// Memory-event webhooks. Writes are never touched: this service follows the change log (the same entries the indexes
/// follow, written in each write's transaction) from a persisted cursor, turns each memory change into
/// <c>memory.created</c>, <c>memory.updated</c> or <c>memory.deleted</c>, and queues one delivery per receiver. A
/// delivery is a signed JSON POST (<see cref="WebhookSignature"/>), retried with doubling delays, and after
/// <see cref="WebhookOptions.MaxAttempts"/> moved to the dead-letter list (retried on request). The cursor, the pending
/// deliveries, the dead letters and the delivery log are kept in the data folder's <c>webhooks.json</c>, so a restart
/// resumes where it stopped (at least once: a delivery sent just before a crash may be sent again; the delivery id
/// in X-Engram-Delivery lets a receiver drop the repeat). When <see cref="WebhookOptions.QueueCapacity"/> deliveries
/// wait, the change log is read no further until they drain: a dead receiver costs a bounded file, never a write.
/// The optional <c>search.performed</c> event comes from the search path instead (<see cref="SearchService.Completed"/>):
/// the search offers a small record to a bounded queue and goes on (a full queue drops it, counted); this service turns
/// the queued ones into deliveries like the others.
/// <para>
/// On a store several instances share (PostgreSQL), one instance delivers at a time: the one holding the
/// <see cref="ExclusiveJobs.Webhooks"/> lock, which keeps the state in the store instead of a file, so another instance
/// takes over where it stopped (MemoryEventWebhooks.Shared.cs).
/// </para>
/// </summary>
public sealed partial class MemoryEventWebhooks : BackgroundService
{
    public const string FileName = "webhooks.json";
    private static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(5);

    /// <summary>The top results a search.performed event names.</summary>
    public const int SearchEventTop = 10;

    private static readonly Counter<long> SearchEventsDroppedTotal = Core.Telemetry.EngramMeter.Meter.CreateCounter<long>(
        "engram_webhook_search_events_dropped_total", description: "search.performed webhook events dropped because their queue was full (the search never waits).");

    private readonly IMemoryStore _store;
    private readonly WebhookOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<MemoryEventWebhooks> _logger;
    private readonly string _path;
    private readonly HttpClient? _client;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly Dictionary<string, long> _due = new(StringComparer.Ordinal); // delivery id → Stopwatch timestamp of its next attempt
    private readonly Channel<SearchEventBody>? _searches;
    private readonly IHttpContextAccessor? _http;
    private long _searchesDropped;
    private WebhookState _state;
    /// <summary>The shared store's locks when several instances may deliver (PostgreSQL); null: this instance always delivers, from its file.</summary>
    private readonly IJobLocks? _locks;
    private readonly Core.Storage.Transfer.IStoreTransfer? _meta;
    /// <summary>The shared state changed since it was last written to the store (<see cref="FlushSharedAsync"/>).</summary>
    private bool _dirty;

    public MemoryEventWebhooks(IMemoryStore store, IOptions<EngramServerOptions> options, TimeProvider clock, ILogger<MemoryEventWebhooks> logger,
        Core.EngramEngine? engine = null, IHttpContextAccessor? http = null)
    {
        _store = store;
        _http = http;
        _options = options.Value.Webhooks;
        _clock = clock;
        _logger = logger;
        _path = Path.Combine(Path.GetFullPath(options.Value.DataPath), FileName);
        if (store is IJobLocks locks && store is Core.Storage.Transfer.IStoreTransfer meta)
        {
            _locks = locks;
            _meta = meta;
        }
        _state = _locks is null ? Load(_path) : new(); // a shared store's state is loaded by the instance that takes the lead
        if (_options.Enabled && _options.EventSet.Contains(WebhookOptions.SearchPerformed) && engine is not null)
        {
            _searches = Channel.CreateBounded<SearchEventBody>(new BoundedChannelOptions(_options.SearchQueueCapacity)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.DropWrite,
            });
            engine.Search.Completed += OnSearch;
        }
        if (_options.Enabled)
        {
            _client = OutboundHttp.CreateClient(OutboundPolicy.For(_options.Receivers, options.Value.Outbound.AllowedHosts), TimeSpan.FromSeconds(5));
        }
    }

    public bool Enabled => _options.Enabled;

    private static WebhookState Load(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<WebhookState>(File.ReadAllBytes(path), EngramJson.Options) ?? new() : new();
        }
        catch (JsonException)
        {
            return new();
        }
    }

    private void Save()
    {
        if (_locks is not null)
        {
            _dirty = true; // written to the store by the delivery loop (FlushSharedAsync)
            return;
        }
        DurableFile.Replace(_path, JsonSerializer.SerializeToUtf8Bytes(_state, EngramJson.Options));
    }

    /// <summary>
    /// The change-log position read through and the deliveries by state (pending, delivered, dead; all when null), newest
    /// first. On an instance of a shared store that does not deliver, as the delivering one last wrote them.
    /// </summary>
    public async Task<(long Cursor, IReadOnlyList<WebhookDeliveryView> Deliveries)> ReadAsync(string? state, int limit, CancellationToken ct = default)
    {
        if (ElsewhereDelivered)
        {
            var shared = await LoadSharedAsync(ct) ?? new WebhookState();
            return (shared.Cursor ?? 0, ListOf(shared, state, limit));
        }
        lock (_lock)
        {
            return (_state.Cursor ?? 0, ListOf(_state, state, limit));
        }
    }

    private static List<WebhookDeliveryView> ListOf(WebhookState from, string? state, int limit)
    {
        IEnumerable<WebhookDelivery> all = state switch
        {
            WebhookDelivery.Pending => from.Pending,
            WebhookDelivery.Delivered => from.Log,
            WebhookDelivery.Dead => from.Dead,
            _ => from.Pending.Concat(from.Log).Concat(from.Dead),
        };
        return [.. all.OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Seq).Take(limit).Select(WebhookDeliveryView.Of)];
    }

    /// <summary>
    /// Moves a dead letter back to the queue (attempts reset); null when no dead letter has that id. On an instance of a
    /// shared store that does not deliver, the request is left in the store for the one that does.
    /// </summary>
    public async Task<WebhookDeliveryView?> RetryAsync(string id, CancellationToken ct = default)
    {
        if (ElsewhereDelivered)
        {
            return await RequestRetryAsync(id, ct);
        }
        lock (_lock)
        {
            var again = RetryLocked(id);
            if (again is not null)
            {
                Save();
                Wake();
            }
            return again;
        }
    }

    /// <summary>Under <see cref="_lock"/>: moves the dead letter <paramref name="id"/> back to the queue; null when there is none.</summary>
    private WebhookDeliveryView? RetryLocked(string id)
    {
        var dead = _state.Dead.FirstOrDefault(d => d.Id == id);
        if (dead is null)
        {
            return null;
        }
        _state.Dead.Remove(dead);
        var again = dead with { State = WebhookDelivery.Pending, Attempts = 0 };
        _state.Pending.Add(again);
        _due[again.Id] = 0;
        return WebhookDeliveryView.Of(again);
    }

    /// <summary>search.performed events dropped since start because their queue was full.</summary>
    public long SearchEventsDropped => Interlocked.Read(ref _searchesDropped);

    /// <summary>On the search's thread: a small record offered to the bounded queue, never a wait (a full queue drops it).</summary>
    private void OnSearch(SearchCompleted search)
    {
        if (search.Result is not { } result || _searches is null)
        {
            return; // a failed or cancelled search is no search.performed
        }
        var top = new SearchEventHit[Math.Min(SearchEventTop, result.Results.Count)];
        for (var i = 0; i < top.Length; i++)
        {
            top[i] = new SearchEventHit(result.Results[i].Memory.Id, Math.Round(result.Results[i].Score, 6));
        }
        var body = new SearchEventBody(WebhookOptions.SearchPerformed, search.Caller.Tenant, RouteOf(_http?.HttpContext?.Request.Path.Value), search.Request.Query,
            search.Request.K, search.Request.Filters, result.Results.Count, top, Math.Round(search.Seconds * 1000, 3), search.Kind, _clock.GetUtcNow());
        if (_searches.Writer.TryWrite(body))
        {
            Wake();
        }
        else
        {
            Interlocked.Increment(ref _searchesDropped);
            SearchEventsDroppedTotal.Add(1);
        }
    }

    /// <summary>Where a search came from, by its request's path: rest, mcp, mem0, ui, chat, or internal (no request: the Telegram bot, jobs).</summary>
    public static string RouteOf(string? path) => path switch
    {
        null => "internal",
        _ when path.StartsWith(Mcp.McpEndpoint.Path, StringComparison.Ordinal) => "mcp",
        _ when path.StartsWith("/ui", StringComparison.Ordinal) => "ui",
        "/v1/memories/search" or "/v2/memories/search" or "/v3/memories/search" => "mem0",
        _ when path.StartsWith("/v1/chat", StringComparison.Ordinal) => "chat",
        _ => "rest",
    };

    /// <summary>Turns the queued search events into deliveries, while the delivery queue has room; true when any was taken.</summary>
    private bool DrainSearches()
    {
        if (_searches is null)
        {
            return false;
        }
        var receivers = _options.Receivers;
        lock (_lock)
        {
            var room = _options.QueueCapacity - _state.Pending.Count;
            var taken = false;
            while (room >= receivers.Count && _searches.Reader.TryRead(out var search))
            {
                AddSearchDeliveries(search, receivers);
                room -= receivers.Count;
                taken = true;
            }
            if (taken)
            {
                Save();
            }
            return taken;
        }
    }

    /// <summary>Under <see cref="_lock"/>: one pending delivery of <paramref name="search"/> per receiver, due now.</summary>
    private void AddSearchDeliveries(SearchEventBody search, IReadOnlyList<Uri> receivers)
    {
        var body = JsonSerializer.Serialize(search, EngramJson.Options);
        foreach (var url in receivers)
        {
            var delivery = new WebhookDelivery(Guid.NewGuid().ToString("N"), WebhookOptions.SearchPerformed, url.ToString(), search.Tenant, "", 0, search.At,
                WebhookDelivery.Pending, 0, null, null, null, null, body);
            _state.Pending.Add(delivery);
            _due[delivery.Id] = 0;
        }
    }

    private void Wake() => _wake.WakeOnce();

    /// <summary>The store's newest change when this service started, before the server took requests (null: unknown).</summary>
    private long? _startSeq;

    /// <summary>
    /// Notes the store's newest change before the server listens: a first start follows the log from there, so a write the
    /// server accepts before the delivery loop's first round (it starts in the background, and on PostgreSQL only once
    /// this instance leads) still gets its event. Reading it from the loop had lost a create and an update made right
    /// after the start.
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.Enabled)
        {
            try
            {
                _startSeq = await _store.GetLastSeqAsync(cancellationToken);
            }
            catch (StoreException ex)
            {
                LogFollowFailed(_logger, ex.Message); // the store is away: the first round reads its newest change then
            }
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            return;
        }
        try
        {
            if (_locks is null)
            {
                await StartDeliveringAsync(stoppingToken);
            }
            while (!stoppingToken.IsCancellationRequested)
            {
                var read = false;
                var sent = false;
                try
                {
                    if (_locks is not null && !await LeadAsync(stoppingToken))
                    {
                        // Another instance delivers: this one hands it its search events and stands by.
                        await ShareSearchesAsync(stoppingToken);
                        await _wake.WaitAsync(TimeSpan.FromMilliseconds(250), stoppingToken);
                        continue;
                    }
                    read = await TakeRequestsAsync(stoppingToken);
                    read |= await FollowAsync(stoppingToken);
                    read |= DrainSearches();
                    await FlushSharedAsync(stoppingToken); // the cursor and the new deliveries are stored before any is sent
                    sent = await SendDueAsync(stoppingToken);
                    await FlushSharedAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is StoreException or IOException)
                {
                    LogFollowFailed(_logger, ex.Message); // the store is away or busy: the next round tries again
                }
                if (!read && !sent)
                {
                    await _wake.WaitAsync(TimeSpan.FromMilliseconds(250), stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await ResignAsync(flush: true);
        }
    }

    /// <summary>Before the first round of delivering: every pending delivery is due, and a first start follows the log from now on.</summary>
    private async Task StartDeliveringAsync(CancellationToken ct)
    {
        lock (_lock)
        {
            _due.Clear();
            foreach (var pending in _state.Pending)
            {
                _due[pending.Id] = 0;
            }
        }
        var last = await _store.GetLastSeqAsync(ct);
        lock (_lock)
        {
            if (_state.Cursor is { } cursor && cursor > last)
            {
                // A cursor past the store's newest change belongs to another store (an older backup restored under the
                // same folder, a file taken over from elsewhere): following it would skip every change until the log
                // caught up. From now on instead, as at a first start.
                LogCursorReset(_logger, cursor);
                _state.Cursor = null;
            }
            if (_state.Cursor is null)
            {
                // First start with webhooks: from this server's start on, not the store's whole history.
                _state.Cursor = _startSeq is { } started && started <= last ? started : last;
                Save();
            }
        }
    }

    /// <summary>Reads the next memory changes into deliveries, while the queue has room; true when any was read.</summary>
    private async Task<bool> FollowAsync(CancellationToken ct)
    {
        int room;
        long cursor;
        lock (_lock)
        {
            room = _options.QueueCapacity - _state.Pending.Count;
            cursor = _state.Cursor ?? 0;
        }
        var receivers = _options.Receivers;
        var perChange = Math.Max(1, receivers.Count);
        if (room < perChange)
        {
            return false;
        }
        var page = await _store.ReadChangesAsync(cursor, Math.Min(100, room / perChange), ChangeRecord.MemoryEntity, ct);
        if (page.ReadThrough <= cursor)
        {
            return false;
        }
        var events = _options.EventSet;
        var added = new List<WebhookDelivery>();
        foreach (var change in page.Changes)
        {
            // The history entry written in the change's transaction says what happened (created, updated, deleted,
            // expired) and holds the memory then (or the fields changed); the memory now is added while still that version.
            var caller = Caller.System("webhooks", change.Tenant);
            var entry = (await _store.GetHistoryAsync(caller, change.EntityId, ct)).FirstOrDefault(h => h.Seq == change.Seq);
            var memory = change.Op == ChangeRecord.Delete ? null : await _store.GetAsync(caller, change.EntityId, ct);
            var what = entry?.Event ?? (change.Op == ChangeRecord.Delete ? HistoryEvents.Deleted : memory is { Version: > 1 } ? HistoryEvents.Updated : HistoryEvents.Created);
            var name = what switch
            {
                HistoryEvents.Created => WebhookOptions.Created,
                HistoryEvents.Updated => WebhookOptions.Updated,
                _ => WebhookOptions.Deleted,
            };
            if (entry is not null && memory is not null && memory.Version != entry.Version)
            {
                memory = null; // changed again since: that later change has its own event
            }
            if (!events.Contains(name))
            {
                continue;
            }
            var body = JsonSerializer.Serialize(new MemoryEventBody(name, what, change.Tenant, change.EntityId, change.Seq, change.At, entry?.Version, memory,
                entry?.Changes), EngramJson.Options);
            foreach (var url in receivers)
            {
                added.Add(new WebhookDelivery(Guid.NewGuid().ToString("N"), name, url.ToString(), change.Tenant, change.EntityId, change.Seq, _clock.GetUtcNow(),
                    WebhookDelivery.Pending, 0, null, null, null, null, body));
            }
        }
        lock (_lock)
        {
            _state.Pending.AddRange(added);
            foreach (var delivery in added)
            {
                _due[delivery.Id] = 0;
            }
            _state.Cursor = page.ReadThrough;
            Save();
        }
        return true;
    }

    /// <summary>Sends the due deliveries: each receiver's in order, receivers side by side; a failure stops that receiver's round.</summary>
    private async Task<bool> SendDueAsync(CancellationToken ct)
    {
        List<IGrouping<string, WebhookDelivery>> due;
        var now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            due = [.. _state.Pending.Where(d => _due.GetValueOrDefault(d.Id) <= now).OrderBy(d => d.Seq).GroupBy(d => d.Url)];
        }
        if (due.Count == 0)
        {
            return false;
        }
        await Task.WhenAll(due.Select(group => SendReceiverAsync([.. group], ct)));
        return true;
    }

    private async Task SendReceiverAsync(List<WebhookDelivery> deliveries, CancellationToken ct)
    {
        foreach (var delivery in deliveries)
        {
            var (ok, status, error) = await AttemptAsync(delivery, ct);
            lock (_lock)
            {
                var index = _state.Pending.FindIndex(d => d.Id == delivery.Id);
                if (index < 0)
                {
                    return;
                }
                var attempts = delivery.Attempts + 1;
                var done = delivery with { Attempts = attempts, LastStatus = status, LastError = error, LastAttemptAt = _clock.GetUtcNow() };
                _state.Pending.RemoveAt(index);
                if (ok)
                {
                    _due.Remove(delivery.Id);
                    Bounded(_state.Log, done with { State = WebhookDelivery.Delivered, DeliveredAt = _clock.GetUtcNow(), Body = null });
                }
                else if (attempts >= _options.MaxAttempts)
                {
                    _due.Remove(delivery.Id);
                    Bounded(_state.Dead, done with { State = WebhookDelivery.Dead });
                    LogDead(_logger, delivery.Event, delivery.MemoryId, attempts, error ?? $"HTTP {status}");
                }
                else
                {
                    _state.Pending.Insert(index, done);
                    var delay = TimeSpan.FromMilliseconds(Math.Min(MaxDelay.TotalMilliseconds, _options.RetryBaseMilliseconds * Math.Pow(2, attempts - 1)));
                    _due[delivery.Id] = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
                }
                Save();
                if (!ok)
                {
                    return; // keep this receiver's order: the rest wait for the failed one's retry
                }
            }
        }
    }

    private void Bounded(List<WebhookDelivery> list, WebhookDelivery delivery)
    {
        list.Add(delivery);
        if (list.Count > _options.LogSize)
        {
            list.RemoveRange(0, list.Count - _options.LogSize);
        }
    }

    private async Task<(bool Ok, int? Status, string? Error)> AttemptAsync(WebhookDelivery delivery, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.TimeoutSeconds));
            using var request = WebhookSignature.Request(new Uri(delivery.Url), _options.Secret!, System.Text.Encoding.UTF8.GetBytes(delivery.Body ?? "{}"),
                delivery.Event, delivery.Id, DateTimeOffset.UtcNow); // the signature's time is the wall clock's: receivers compare it with theirs
            // Only the status is read: the receiver's body is never buffered (an endless one grew the server by gigabytes).
            using var response = await _client!.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            return (response.IsSuccessStatusCode, status, response.IsSuccessStatusCode ? null : $"answered {status}");
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return (false, null, ex is OperationCanceledException ? $"no answer within {_options.TimeoutSeconds} s" : ex.Message);
        }
    }

    public override void Dispose()
    {
        _client?.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 1950, Level = LogLevel.Warning, Message = "webhooks: reading the change log failed, retrying: {Reason}")]
    private static partial void LogFollowFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1954, Level = LogLevel.Warning, Message = "webhooks: the stored cursor {Cursor} is past the store's newest change; following the change log from now on")]
    private static partial void LogCursorReset(ILogger logger, long cursor);

    [LoggerMessage(EventId = 1951, Level = LogLevel.Warning, Message = "webhooks: {Event} of memory {MemoryId} failed {Attempts} times and is now a dead letter ({Reason}); POST /v1/admin/webhooks/deliveries/ID/retry sends it again")]
    private static partial void LogDead(ILogger logger, string @event, string memoryId, int attempts, string reason);

    private sealed class WebhookState
    {
        public long? Cursor { get; set; }
        public List<WebhookDelivery> Pending { get; set; } = [];
        public List<WebhookDelivery> Dead { get; set; } = [];
        public List<WebhookDelivery> Log { get; set; } = [];
    }
}

/// <summary>A delivery of one event to one receiver; <see cref="Body"/> is kept until it is delivered.</summary>
public sealed record WebhookDelivery(string Id, string Event, string Url, string Tenant, string MemoryId, long Seq, DateTimeOffset CreatedAt, string State,
    int Attempts, int? LastStatus, string? LastError, DateTimeOffset? LastAttemptAt, DateTimeOffset? DeliveredAt, string? Body)
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string Dead = "dead";
}

/// <summary>A delivery as the admin API shows it (without the body, which holds the memory).</summary>
public sealed record WebhookDeliveryView(string Id, string Event, string Url, string Tenant, string MemoryId, long Seq, DateTimeOffset CreatedAt, string State,
    int Attempts, int? LastStatus, string? LastError, DateTimeOffset? LastAttemptAt, DateTimeOffset? DeliveredAt)
{
    public static WebhookDeliveryView Of(WebhookDelivery d) =>
        new(d.Id, d.Event, d.Url, d.Tenant, d.MemoryId, d.Seq, d.CreatedAt, d.State, d.Attempts, d.LastStatus, d.LastError, d.LastAttemptAt, d.DeliveredAt);
}

/// <summary>
/// The JSON a receiver gets: the event, where (tenant, memory id, change-log seq) and when it happened;
/// <c>reason</c> is the history's event (created, updated, deleted, expired); <c>changes</c> the history's record of it (the
/// whole memory for created and deleted, field → {from, to} for updated); <c>memory</c> the memory while it is still at
/// that version (null for a delete, or when a later change followed).
/// </summary>
public sealed record MemoryEventBody(string Event, string Reason, string Tenant, string MemoryId, long Seq, DateTimeOffset At, long? Version,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] Memory? Memory,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] JsonElement? Changes);

/// <summary>
/// The search.performed JSON: who searched (tenant), through which route (rest, mcp, mem0, ui, chat, internal), the query,
/// k and filters as asked, how many results came back, the top ones' ids and scores, the latency and the search kind.
/// </summary>
public sealed record SearchEventBody(string Event, string Tenant, string Route, string? Query, int? K, SearchFilters? Filters, int Results,
    IReadOnlyList<SearchEventHit> Top, double LatencyMs, string Kind, DateTimeOffset At);

/// <summary>One of a search.performed event's top results.</summary>
public sealed record SearchEventHit(string Id, double Score);
