using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace Engram.Server.Http;

/// <summary>
/// The per-caller limits of <see cref="RateLimitOptions"/>: a token bucket refilled on use (tokens for the time since
/// the caller's last request, up to the burst) and, after it, the caller's in-flight bound with its queue
/// (<see cref="ConcurrencyLimiter"/>, first come first served).
/// </summary>
/// <remarks>
/// Not <see cref="PartitionedRateLimiter"/>: each partitioned limiter runs a 100 ms heartbeat to refill buckets and drop
/// idle partitions, and the two of them were 20 of the ~27 timer ticks a second of an idle server, each waking a pool
/// thread that then spun (bench/README.md, session 40). A bucket refilled on use needs no tick; idle callers are dropped
/// by a sweep every <see cref="SweepInterval"/>.
/// </remarks>
internal sealed class CallerRateLimiter : IAsyncDisposable
{
    /// <summary>How often callers idle for longer than <see cref="_retention"/> are dropped.</summary>
    internal static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(10);

    private static readonly RateLimitLease Granted = new Lease(true, null);

    private readonly RateLimitOptions _options;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<RateLimits.ClientKey, Caller> _callers = new();
    /// <summary>
    /// How long an idle caller keeps its limits: until its bucket has refilled (a new one starts full, the same) plus the
    /// sweep's interval. Callers with requests in flight or queued are kept whatever their idle time.
    /// </summary>
    private readonly TimeSpan _retention;
    private readonly ITimer _sweep;
    private readonly ConcurrencyLimiterOptions? _concurrency;

    public CallerRateLimiter(RateLimitOptions options, TimeProvider? clock = null)
    {
        _options = options;
        _clock = clock ?? TimeProvider.System;
        _retention = options.RefillTime + SweepInterval;
        if (options.MaxConcurrentRequests > 0)
        {
            _concurrency = new ConcurrencyLimiterOptions
            {
                PermitLimit = options.MaxConcurrentRequests,
                QueueLimit = options.QueueLimit,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            };
        }
        _sweep = _clock.CreateTimer(static state => ((CallerRateLimiter)state!).Sweep(), this, SweepInterval, SweepInterval);
    }

    /// <summary>Callers with limits of their own right now.</summary>
    public int Callers => _callers.Count;

    /// <summary>
    /// A lease for one request of <paramref name="key"/> (null: not limited, the public probes). Refused by the bucket:
    /// not acquired, with <see cref="MetadataName.RetryAfter"/>; refused by the in-flight bound and its queue: not
    /// acquired, without it. An acquired lease holds the caller's in-flight slot until it is disposed.
    /// </summary>
    public ValueTask<RateLimitLease> AcquireAsync(RateLimits.ClientKey? key, CancellationToken ct)
    {
        if (key is not { } client)
        {
            return ValueTask.FromResult(Granted);
        }
        while (true)
        {
            var caller = _callers.GetOrAdd(client, static (_, self) => new Caller(self._options, self._concurrency, self._clock.GetTimestamp()), this);
            var now = _clock.GetTimestamp();
            TimeSpan? wait;
            lock (caller.Gate)
            {
                if (caller.Retired)
                {
                    continue; // swept between the lookup and here: a fresh one, which the sweep cannot take while it is in use
                }
                caller.LastUsed = now;
                wait = caller.TakeToken(now, _clock.TimestampFrequency, _options);
            }
            if (wait is { } retryAfter)
            {
                return ValueTask.FromResult<RateLimitLease>(new Lease(false, retryAfter));
            }
            return caller.Concurrency is { } concurrency ? concurrency.AcquireAsync(1, ct) : ValueTask.FromResult(Granted);
        }
    }

    /// <summary>Drops callers idle for longer than the retention whose in-flight bound has nothing out or queued.</summary>
    internal void Sweep()
    {
        var now = _clock.GetTimestamp();
        foreach (var (key, caller) in _callers)
        {
            lock (caller.Gate)
            {
                if (_clock.GetElapsedTime(caller.LastUsed, now) < _retention || !caller.Idle)
                {
                    continue;
                }
                caller.Retired = true;
            }
            _callers.TryRemove(new KeyValuePair<RateLimits.ClientKey, Caller>(key, caller));
            caller.Concurrency?.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _sweep.DisposeAsync();
        foreach (var caller in _callers.Values)
        {
            caller.Concurrency?.Dispose();
        }
        _callers.Clear();
    }

    /// <summary>One caller's bucket and in-flight bound.</summary>
    private sealed class Caller(RateLimitOptions options, ConcurrencyLimiterOptions? concurrency, long now)
    {
        public readonly Lock Gate = new();

        public readonly ConcurrencyLimiter? Concurrency = concurrency is null ? null : new ConcurrencyLimiter(concurrency);

        private double _tokens = options.Burst;
        private long _refilledAt = now;

        public long LastUsed = now;

        public bool Retired;

        public bool Idle => Concurrency?.GetStatistics() is not { } stats
            || (stats.CurrentAvailablePermits == options.MaxConcurrentRequests && stats.CurrentQueuedCount == 0);

        /// <summary>Takes a token (null), or says how long until one is there; no bucket (rate 0) always gives one. Under <see cref="Gate"/>.</summary>
        public TimeSpan? TakeToken(long now, long frequency, RateLimitOptions options)
        {
            var rate = options.PermitsPerSecond;
            if (rate <= 0)
            {
                return null;
            }
            if (now > _refilledAt)
            {
                _tokens = Math.Min(options.Burst, _tokens + (now - _refilledAt) * rate / frequency);
                _refilledAt = now;
            }
            if (_tokens >= 1)
            {
                _tokens -= 1;
                return null;
            }
            return TimeSpan.FromSeconds((1 - _tokens) / rate);
        }
    }

    /// <summary>A lease that holds nothing: granted, or refused by the bucket with the wait until its next token.</summary>
    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (retryAfter is { } wait && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = wait;
                return true;
            }
            metadata = null;
            return false;
        }
    }
}
