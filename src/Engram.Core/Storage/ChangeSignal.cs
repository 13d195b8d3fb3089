namespace Engram.Core.Storage;

/// <summary>
/// The wake-up between a store's commit notifications (<see cref="IChangeNotifications"/>) and the index
/// follower: one flag, however many notifications arrive, so a burst of commits costs the follower one
/// wake-up rather than one per commit (the follower reads everything committed when it wakes anyway).
/// Also what the listener's state is, for stats: listening, or down since when and why.
/// </summary>
public sealed class ChangeSignal
{
    private readonly SemaphoreSlim _wake = new(0, 1);
    private int _set;
    private long _newestSeq;
    private long _notifications;
    private long _connects;
    private DownState? _down = new(DateTimeOffset.UtcNow, "not listening yet");

    /// <summary>The highest seq any notification carried (0 before the first).</summary>
    public long NewestSeq => Interlocked.Read(ref _newestSeq);

    /// <summary>Notifications received (each one a committed transaction that appended to the change log).</summary>
    public long Notifications => Interlocked.Read(ref _notifications);

    /// <summary>How often the listener (re)connected; more than one means it reconnected after a drop.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Whether a listening connection is up; false before the first, and while it reconnects.</summary>
    public bool Listening => Volatile.Read(ref _down) is null;

    /// <summary>Since when and why the listener is down; null while listening.</summary>
    public DownState? Down => Volatile.Read(ref _down);

    /// <summary>A transaction that appended up to <paramref name="seq"/> committed: wake the follower (once, however often this is called before it wakes).</summary>
    public void Committed(long seq)
    {
        Interlocked.Increment(ref _notifications);
        Common.InterlockedMax.Raise(ref _newestSeq, seq);
        Wake();
    }

    /// <summary>
    /// The listener is (again) connected. Also wakes the follower: commits made while nobody listened
    /// sent notifications nobody got, and the catch-up reads them from the log.
    /// </summary>
    public void Connected()
    {
        Interlocked.Increment(ref _connects);
        Volatile.Write(ref _down, null);
        Wake();
    }

    /// <summary>The listener lost (or could not open) its connection; the follower polls until it is back.</summary>
    public void Disconnected(string reason)
    {
        if (Volatile.Read(ref _down) is null)
        {
            Volatile.Write(ref _down, new DownState(DateTimeOffset.UtcNow, reason));
        }
        else
        {
            var since = Volatile.Read(ref _down)!.Since;
            Volatile.Write(ref _down, new DownState(since, reason));
        }
    }

    /// <summary>
    /// Waits until woken or <paramref name="timeout"/> passes; true when woken. The flag is cleared on
    /// return, before the caller reads the log: a notification that arrives after that wakes it again,
    /// and one that arrived before is for a commit the read will see.
    /// </summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        var woken = await _wake.WaitAsync(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, ct).ConfigureAwait(false);
        if (woken)
        {
            Volatile.Write(ref _set, 0);
        }
        return woken;
    }

    private void Wake()
    {
        if (Interlocked.Exchange(ref _set, 1) == 0)
        {
            _wake.Release();
        }
    }

    /// <summary>Since when the listener is down, and the last reason.</summary>
    public sealed record DownState(DateTimeOffset Since, string Reason);
}
