namespace Engram.Core.Storage;

/// <summary>
/// Locks that keep a periodic job (the TTL sweep, pruning) to one process at a time across every
/// instance on the store (PostgreSQL: advisory locks). A store without it (SQLite: one server per data
/// folder) needs none, and its jobs always run.
/// </summary>
public interface IJobLocks
{
    /// <summary>
    /// Takes the lock named <paramref name="job"/> if no process holds it: the returned handle releases
    /// it when disposed (and the lock goes by itself if this process dies). Null when another holds it:
    /// skip this run.
    /// </summary>
    Task<IAsyncDisposable?> TryLockJobAsync(string job, CancellationToken ct = default);
}

/// <summary>
/// A lock held for as long as a process keeps a role (not just one run), which must notice when it lost it: a
/// PostgreSQL advisory lock lives in its session, and a cut connection ends both without telling the holder.
/// </summary>
public interface IHeldJobLock : IAsyncDisposable
{
    /// <summary>False once the lock is gone (its session ended); the holder should then stop acting on it and dispose it.</summary>
    Task<bool> IsHeldAsync(CancellationToken ct = default);
}

/// <summary>The jobs that take a <see cref="IJobLocks"/> lock, by name, and how a job runs under one.</summary>
public static class ExclusiveJobs
{
    /// <summary>The TTL sweep and key-value history pruning (ExpirySweeper).</summary>
    public const string Sweeper = "sweeper";

    /// <summary>Dropping stored vectors of a previous embedding model.</summary>
    public const string VectorPruning = "vector-pruning";

    /// <summary>A scheduled backup.</summary>
    public const string Backup = "backup";

    /// <summary>A scheduled reflection run (reflections and near-duplicates, issue 16).</summary>
    public const string Reflection = "reflection";

    /// <summary>Delivering memory-event webhooks: one instance of a shared store at a time, held while it delivers.</summary>
    public const string Webhooks = "webhooks";

    /// <summary>
    /// Runs <paramref name="job"/> when <paramref name="store"/> has no locks or this process got the lock <paramref name="name"/>;
    /// returns false (without running it) when another process holds it.
    /// </summary>
    public static async Task<bool> RunAsync(IMemoryStore store, string name, Func<Task> job, CancellationToken ct)
    {
        if (store is not IJobLocks locks)
        {
            await job().ConfigureAwait(false);
            return true;
        }
        var held = await locks.TryLockJobAsync(name, ct).ConfigureAwait(false);
        if (held is null)
        {
            return false;
        }
        await using (held.ConfigureAwait(false))
        {
            await job().ConfigureAwait(false);
        }
        return true;
    }
}
