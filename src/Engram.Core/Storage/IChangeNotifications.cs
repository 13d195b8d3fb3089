namespace Engram.Core.Storage;

/// <summary>
/// A store whose commits other processes hear about as they happen (PostgreSQL: LISTEN/NOTIFY), so an
/// instance's index follower catches up at once instead of at its next poll. Optional: a store without
/// it (SQLite, where other processes' writes are rare) is followed by polling alone, and so is this
/// one while its listener is down.
/// </summary>
public interface IChangeNotifications
{
    /// <summary>
    /// Holds one listening connection until <paramref name="ct"/> is cancelled, calling
    /// <see cref="ChangeSignal.Committed"/> for every committed transaction that appended to the change
    /// log (this process's and every other's), and reconnecting with backoff when the connection drops
    /// (<see cref="ChangeSignal.Disconnected"/> meanwhile). Returns only when cancelled.
    /// </summary>
    Task ListenAsync(ChangeSignal signal, CancellationToken ct);
}
