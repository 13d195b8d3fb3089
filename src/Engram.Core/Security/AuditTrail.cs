using System.Threading.Channels;
using Engram.Core.Operations;

namespace Engram.Core.Security;

/// <summary>
/// Writes the audit log. Key changes are written before the change is reported (<see cref="WriteAsync"/>);
/// request-path entries (bulk deletes, denied requests) are queued (<see cref="Enqueue"/>) and written in
/// batches by one background loop, off the request's critical path, and drained on a clean shutdown
/// (<see cref="DisposeAsync"/>). Denied requests are limited so that a flood of bad keys cannot flood
/// the store: one entry per remote address per second (the next one counts those left out) and at
/// most <see cref="MaxDeniedPerSecond"/> in all.
/// </summary>
public sealed class AuditTrail : IAsyncDisposable
{
    public const int MaxDeniedPerSecond = 50;

    /// <summary>Remote addresses whose denials are being counted, at most (~100 bytes each); cleared when full (counted as <c>audit_denied_remotes</c>).</summary>
    public const int MaxTrackedRemotes = 10_000;

    /// <summary>
    /// Entries waiting for the background writer, at most (~300 bytes each, ~3 MB). When full, new entries are dropped
    /// and counted (<see cref="Dropped"/>, <c>engram_bound_overflow_total{part="audit_queue"}</c>), not waited for: the
    /// request path must not stall on a slow store for an audit line, and denials (the bulk of a flood) are already sampled.
    /// </summary>
    public const int QueueCapacity = 10_000;

    /// <summary>Estimated bytes of one queued entry (for <c>GET /v1/admin/memory</c>).</summary>
    public const long EntryBytes = 300;

    private const int BatchSize = 256;

    private readonly IAuditLog _log;
    private readonly int _maxRows;
    private readonly Channel<AuditEntry> _queue = Channel.CreateBounded<AuditEntry>(new BoundedChannelOptions(QueueCapacity)
    {
        SingleReader = true,
        // Wait, not DropWrite: in DropWrite mode TryWrite reports success for an item it drops, which would go uncounted
        // (and stay pending forever); with Wait, TryWrite answers false when full and the caller counts the drop.
        FullMode = BoundedChannelFullMode.Wait,
    });
    private readonly Task _loop;
    private readonly object _deniedGate = new();
    private readonly Dictionary<string, (long Second, int Suppressed)> _deniedByRemote = new(StringComparer.Ordinal);
    private long _deniedSecond;
    private int _deniedThisSecond;
    private long _failed;
    private long _dropped;
    private long _pending;

    public AuditTrail(IAuditLog log, int maxRows = 100_000)
    {
        _log = log;
        _maxRows = maxRows;
        _loop = Task.Run(WriteQueuedAsync);
    }

    /// <summary>Entries the background loop failed to write (the store failed) or dropped (queue full, denial limits).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Entries queued and not written yet (at most <see cref="QueueCapacity"/>).</summary>
    public long Pending => Math.Max(0, Interlocked.Read(ref _pending));

    /// <summary>Remote addresses tracked for the per-address denial limit (at most <see cref="MaxTrackedRemotes"/>).</summary>
    public int TrackedRemotes
    {
        get
        {
            lock (_deniedGate)
            {
                return _deniedByRemote.Count;
            }
        }
    }

    /// <summary>Writes one entry now; the task completes once it is stored.</summary>
    public Task WriteAsync(AuditEntry entry, CancellationToken ct = default) => _log.AppendAuditAsync([entry], _maxRows, ct);

    /// <summary>Queues an entry for the background writer.</summary>
    public void Enqueue(AuditEntry entry)
    {
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(entry))
        {
            Interlocked.Decrement(ref _pending);
            Interlocked.Increment(ref _dropped);
            BoundOverflow.Count("audit_queue");
        }
    }

    /// <summary>Queues a denied request, within the per-remote and overall limits.</summary>
    public void Denied(AuditEntry entry)
    {
        var second = entry.At.ToUnixTimeSeconds();
        var remote = entry.Remote ?? "";
        int suppressed;
        lock (_deniedGate)
        {
            if (second != _deniedSecond)
            {
                _deniedSecond = second;
                _deniedThisSecond = 0;
            }
            if (_deniedByRemote.Count >= MaxTrackedRemotes)
            {
                // Full: forget every address (their suppressed counts go unreported) rather than grow; a flood of this many addresses is itself logged.
                BoundOverflow.Count("audit_denied_remotes", _deniedByRemote.Count);
                _deniedByRemote.Clear();
            }
            var known = _deniedByRemote.TryGetValue(remote, out var seen);
            if ((known && seen.Second == second) || _deniedThisSecond >= MaxDeniedPerSecond)
            {
                // Counted, not written: the next entry written for this address says how many.
                _deniedByRemote[remote] = (seen.Second, seen.Suppressed + 1);
                Interlocked.Increment(ref _dropped);
                return;
            }
            suppressed = seen.Suppressed;
            _deniedByRemote[remote] = (second, 0);
            _deniedThisSecond++;
        }
        Enqueue(suppressed == 0 ? entry : entry with { Detail = $"{entry.Detail} (+{suppressed} earlier denials from this address not logged one by one)" });
    }

    private async Task WriteQueuedAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<AuditEntry>(BatchSize);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < BatchSize && reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }
            try
            {
                await _log.AppendAuditAsync(batch.ToArray(), _maxRows).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is Storage.StoreException or ObjectDisposedException or InvalidOperationException)
            {
                Interlocked.Add(ref _failed, batch.Count);
            }
            Interlocked.Add(ref _pending, -batch.Count);
        }
    }

    /// <summary>Waits until every entry queued so far is written (tests; shutdown).</summary>
    public async Task FlushAsync()
    {
        while (Interlocked.Read(ref _pending) > 0 && !_loop.IsCompleted)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    /// <summary>Stops taking entries and writes the queued ones; call before the store closes.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }
}
