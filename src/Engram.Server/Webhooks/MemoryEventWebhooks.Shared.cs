using System.Globalization;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Webhooks;

/// <summary>
/// Webhooks on a store several instances share (PostgreSQL): each memory event must reach a receiver once, not once per
/// instance. The instance holding the <see cref="ExclusiveJobs.Webhooks"/> lock (a session-level advisory lock, held
/// while it delivers) follows the change log and sends; its state (cursor, pending deliveries, dead letters, the log) lives
/// in the store's <c>store_meta</c> instead of a file, so when it stops or dies (its session ends and the lock with it)
/// another instance takes the lock within two to four seconds and goes on from the stored cursor. The others hand over what
/// only they can see: their search.performed events and dead-letter retries asked of them, as <c>store_meta</c> rows the
/// delivering instance takes each round. At least once, as everywhere: an instance that loses its lock (checked every two
/// seconds) may have sent a delivery whose state it could not store, which the next one sends again with the same id.
/// </summary>
public sealed partial class MemoryEventWebhooks
{
    /// <summary>store_meta key of the delivering instance's state.</summary>
    public const string StateKey = "webhooks:state";

    /// <summary>store_meta prefix of a retry asked of another instance (the delivery id follows).</summary>
    public const string RetryPrefix = "webhooks:retry:";

    /// <summary>store_meta prefix of search events handed over by another instance (instance and batch number follow).</summary>
    public const string SearchPrefix = "webhooks:search:";

    private const long LeadTryMs = 2000;
    private const long LeadCheckMs = 2000;
    private const int ShareBatch = 500;

    private readonly string _instance = Guid.NewGuid().ToString("N")[..12];
    private volatile IHeldJobLock? _leadership; // read by request threads (Delivering)
    private long _leadTriedAt = -LeadTryMs; // the first round tries at once
    private long _leadCheckedAt;
    private long _sharedBatches;

    /// <summary>This instance delivers (always, on a store of its own).</summary>
    public bool Delivering => _locks is null || _leadership is not null;

    /// <summary>Another instance of the shared store delivers, and holds the state.</summary>
    private bool ElsewhereDelivered => _options.Enabled && !Delivering;

    /// <summary>
    /// True while this instance delivers: takes the lock when free (tried at most every two seconds), then loads the shared
    /// state; a held lock is checked every two seconds, and one found lost stops this instance delivering.
    /// </summary>
    private async Task<bool> LeadAsync(CancellationToken ct)
    {
        var now = Environment.TickCount64;
        if (_leadership is { } held)
        {
            if (now - _leadCheckedAt < LeadCheckMs)
            {
                return true;
            }
            _leadCheckedAt = now;
            if (await held.IsHeldAsync(ct))
            {
                return true;
            }
            LogLeadLost(_logger);
            await ResignAsync(flush: false); // another instance may hold the state now: never overwrite it
            return false;
        }
        if (now - _leadTriedAt < LeadTryMs)
        {
            return false;
        }
        _leadTriedAt = now;
        var taken = await _locks!.TryLockJobAsync(ExclusiveJobs.Webhooks, ct);
        if (taken is null)
        {
            return false;
        }
        WebhookState state;
        try
        {
            state = await LoadSharedAsync(ct) ?? TakeOverLocalFile() ?? new WebhookState();
        }
        catch
        {
            await taken.DisposeAsync();
            throw;
        }
        lock (_lock)
        {
            _state = state;
            _dirty = true;
        }
        _leadership = taken as IHeldJobLock ?? new HeldForGood(taken);

        _leadCheckedAt = now;
        try
        {
            await StartDeliveringAsync(ct);
            await FlushSharedAsync(ct); // the state as taken over (a first cursor included) is stored before anything is sent
        }
        catch
        {
            await ResignAsync(flush: false);
            throw;
        }
        LogLeading(_logger);
        return true;
    }

    /// <summary>Stops delivering and lets the lock go; <paramref name="flush"/>: store the state first (not when the lock was lost).</summary>
    private async Task ResignAsync(bool flush)
    {
        if (_leadership is not { } held)
        {
            return;
        }
        try
        {
            if (flush)
            {
                await FlushSharedAsync(CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is StoreException or IOException)
        {
            LogFollowFailed(_logger, ex.Message);
        }
        finally
        {
            _leadership = null;
            await held.DisposeAsync();
        }
    }

    /// <summary>The state the delivering instance last stored; null when none was (or it cannot be read, which is logged).</summary>
    private async Task<WebhookState?> LoadSharedAsync(CancellationToken ct)
    {
        if (await _meta!.GetMetaAsync(StateKey, ct) is not { } json)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<WebhookState>(json, EngramJson.Options);
        }
        catch (JsonException ex)
        {
            LogFollowFailed(_logger, "the stored webhook state is unreadable, starting over: " + ex.Message);
            return null;
        }
    }

    /// <summary>
    /// An instance that delivered from its own file before its store was shared (an upgrade): the first to lead takes that
    /// file's cursor and deliveries over, once (the file is renamed).
    /// </summary>
    private WebhookState? TakeOverLocalFile()
    {
        if (!File.Exists(_path))
        {
            return null;
        }
        var state = Load(_path);
        File.Move(_path, _path + ".taken-over", overwrite: true);
        return state;
    }

    /// <summary>Writes the state to the store when it changed (the delivering instance of a shared store).</summary>
    private async Task FlushSharedAsync(CancellationToken ct)
    {
        if (_locks is null || _leadership is null)
        {
            return;
        }
        string json;
        lock (_lock)
        {
            if (!_dirty)
            {
                return;
            }
            json = JsonSerializer.Serialize(_state, EngramJson.Options);
            _dirty = false;
        }
        try
        {
            await _meta!.SetMetaAsync(StateKey, json, ct);
        }
        catch
        {
            lock (_lock)
            {
                _dirty = true;
            }
            throw;
        }
    }

    /// <summary>
    /// The delivering instance takes what the others left in the store: retries asked of them, and their search events
    /// (those the queue has no room for are dropped and counted, as a full queue drops a local one). True when any was taken.
    /// </summary>
    private async Task<bool> TakeRequestsAsync(CancellationToken ct)
    {
        if (_locks is null)
        {
            return false;
        }
        var taken = false;
        foreach (var (key, _) in await _meta!.ListMetaAsync(RetryPrefix, ct))
        {
            lock (_lock)
            {
                if (RetryLocked(key[RetryPrefix.Length..]) is not null)
                {
                    Save();
                }
            }
            await _meta.SetMetaAsync(key, null, ct);
            taken = true;
        }
        var receivers = _options.Receivers;
        foreach (var (key, value) in await _meta.ListMetaAsync(SearchPrefix, ct))
        {
            SearchEventBody[] searches;
            try
            {
                searches = JsonSerializer.Deserialize<SearchEventBody[]>(value, EngramJson.Options) ?? [];
            }
            catch (JsonException)
            {
                searches = [];
            }
            lock (_lock)
            {
                var room = _options.QueueCapacity - _state.Pending.Count;
                foreach (var search in searches)
                {
                    if (room < receivers.Count)
                    {
                        Interlocked.Increment(ref _searchesDropped);
                        SearchEventsDroppedTotal.Add(1);
                        continue;
                    }
                    AddSearchDeliveries(search, receivers);
                    room -= receivers.Count;
                }
                Save();
            }
            await _meta.SetMetaAsync(key, null, ct);
            taken = true;
        }
        return taken;
    }

    /// <summary>An instance that does not deliver hands its queued search events to the one that does, one store row per round.</summary>
    private async Task ShareSearchesAsync(CancellationToken ct)
    {
        if (_searches is null)
        {
            return;
        }
        var batch = new List<SearchEventBody>();
        while (batch.Count < ShareBatch && _searches.Reader.TryRead(out var search))
        {
            batch.Add(search);
        }
        if (batch.Count == 0)
        {
            return;
        }
        var key = string.Create(CultureInfo.InvariantCulture, $"{SearchPrefix}{_instance}:{++_sharedBatches:D12}");
        try
        {
            await _meta!.SetMetaAsync(key, JsonSerializer.Serialize(batch, EngramJson.Options), ct);
        }
        catch (StoreException)
        {
            Interlocked.Add(ref _searchesDropped, batch.Count); // best effort, like the queue itself
            SearchEventsDroppedTotal.Add(batch.Count);
            throw;
        }
    }

    /// <summary>A retry asked of an instance that does not deliver: left in the store for the one that does.</summary>
    private async Task<WebhookDeliveryView?> RequestRetryAsync(string id, CancellationToken ct)
    {
        var dead = (await LoadSharedAsync(ct))?.Dead.FirstOrDefault(d => d.Id == id);
        if (dead is null)
        {
            return null;
        }
        await _meta!.SetMetaAsync(RetryPrefix + id, _clock.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), ct);
        return WebhookDeliveryView.Of(dead with { State = WebhookDelivery.Pending, Attempts = 0 });
    }

    /// <summary>A lock without a way to check it: held until disposed.</summary>
    private sealed class HeldForGood(IAsyncDisposable held) : IHeldJobLock
    {
        public Task<bool> IsHeldAsync(CancellationToken ct = default) => Task.FromResult(true);

        public ValueTask DisposeAsync() => held.DisposeAsync();
    }

    [LoggerMessage(EventId = 1952, Level = LogLevel.Information, Message = "webhooks: this instance now delivers the store's memory events")]
    private static partial void LogLeading(ILogger logger);

    [LoggerMessage(EventId = 1953, Level = LogLevel.Warning, Message = "webhooks: this instance lost the delivery lock (its database session ended); another instance takes over")]
    private static partial void LogLeadLost(ILogger logger);
}
