using System.Collections.Concurrent;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// The instance's queue of writes that append to the change log, and group commit for key-value SETs.
/// <para>
/// Such writes run one at a time anyway (each takes the database's log lock, <see cref="LockLogAsync"/>), so the
/// instance queues them here, in memory and in arrival order, rather than as a hundred pooled sessions waiting on one row
/// lock (which PostgreSQL serves far slower); the database lock is what orders them against other instances. One task at
/// a time, the leader, takes the writes off the queue. A run of key-value SETs, MSETs and changes of one key (DEL, INCR,
/// EXPIRE, an atomic update) at its head goes into one transaction: the lock, the entries of all its keys (1,000 to a
/// query), the statements that write each with its history row and change-log entry (256 to a round trip,
/// <see cref="WriteBatchedAsync"/>), then the log head moved, one notification and one commit, instead of five round trips
/// per write. Any other write runs in a transaction of its own, in its turn.
/// </para>
/// <para>
/// A SET whose condition (nx/xx) fails has written nothing (the condition is checked before its one write statement), so
/// it fails alone and the group goes on. A statement error aborts PostgreSQL's transaction, and with it the group's: every
/// SET of it then runs again alone, so each gets its own outcome and a bad one takes no neighbour with it. When the
/// database is unavailable, the whole group fails at once (each SET alone would wait out its own connection attempt).
/// </para>
/// </summary>
public sealed partial class PostgresMemoryStore
{
    /// <summary>The most writes one group's transaction holds (a group holds the database's log lock while it runs).</summary>
    internal const int MaxLogGroup = 128;

    /// <summary>
    /// The most SETs one group's transaction holds (an MSET counts each key). It was 64 while each SET moved log_head's one
    /// row: PostgreSQL finds a row updated many times in one transaction at the end of a chain of its versions, and groups
    /// of ~800 SETs ran 30% slower. Since the transaction counts its seqs itself and moves log_head once
    /// (<see cref="NextSeq"/>), larger groups pay: full-durability SET -c 50 -P 16 7.1-7.2k/s with 64, 9.0-9.2k/s with
    /// 1,024 (session 32).
    /// </summary>
    internal const int MaxLogGroupSets = 1024;

    private readonly ConcurrentQueue<LoggedWrite> _logQueue = new();
    private int _logLeader; // 1 while a task takes writes off the queue
    private long _logGroups;
    private long _largestLogGroup;

    /// <summary>Transactions of grouped key-value SETs run so far (a group of one included); for tests and metrics.</summary>
    internal long LogGroupsRun => Volatile.Read(ref _logGroups);

    /// <summary>The most queued writes (a SET or an MSET each) one group has held so far.</summary>
    internal int LargestLogGroup => (int)Interlocked.Read(ref _largestLogGroup);

    /// <summary>A write that appends to the change log: queued, and run in its turn under the log lock.</summary>
    private async Task<T> LoggedAsync<T>(Func<NpgsqlConnection, Task<T>> write, WriteDurability durability, CancellationToken ct)
    {
        var result = await Enqueue(new LoggedWrite(async c => await write(c).ConfigureAwait(false), null, durability, ct)).ConfigureAwait(false);
        return (T)result!;
    }

    /// <summary>Key-value SETs, as one queued write that may share its transaction with the writes queued beside it.</summary>
    private async Task<IReadOnlyList<KvSetResult>> SetGroupedAsync(Caller caller, IReadOnlyList<KvWrite> writes, WriteDurability durability,
        CancellationToken ct)
    {
        var result = await Enqueue(new LoggedWrite(c => SetAllAsync(c, caller, writes, NowMs), new GroupedKvWrite(caller, writes), durability, ct))
            .ConfigureAwait(false);
        return (IReadOnlyList<KvSetResult>)result!;
    }

    /// <summary>
    /// A change of one key decided from its live entry (DEL, INCR, EXPIRE, an atomic update), as one queued write that may
    /// share its transaction with the writes queued beside it: a pipeline of single-key DELs was one transaction (and, at
    /// full durability, one WAL flush) per key, 20,000 of them 24-30 s. Returns the decision's outcome; a decision that
    /// throws refuses the write (nothing is written) and the exception is the caller's.
    /// </summary>
    private Task<object?> ChangeGroupedAsync(Caller caller, string storedKey, Func<KvEntry?, long, KeyDecision> decide, WriteDurability durability,
        CancellationToken ct)
    {
        var grouped = new GroupedKvWrite(caller, [], new KeyChange(storedKey, decide));
        return Enqueue(new LoggedWrite(async c =>
        {
            var outcome = (await WriteBatchedAsync(c, [grouped], NowMs).ConfigureAwait(false))[0];
            if (outcome is Exception refused)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(refused);
            }
            return outcome;
        }, grouped, durability, ct));
    }

    /// <summary>
    /// The SETs of one queued write run alone (a SET, or an MSET's keys in order): see <see cref="WriteBatchedAsync"/>, which a
    /// group's SETs go through together.
    /// </summary>
    private static async Task<object?> SetAllAsync(NpgsqlConnection c, Caller caller, IReadOnlyList<KvWrite> writes, long now)
    {
        if (writes.Count == 1)
        {
            // The common case (an unpipelined SET): the prepared single-key lookup, no array or dictionary.
            var (current, head) = await CurrentKvAsync(c, caller.Tenant, writes[0].StoredKey, withHead: true).ConfigureAwait(false);
            return new[] { await SetOneAsync(c, caller, writes[0], current, head, now).ConfigureAwait(false) };
        }
        var outcome = (await WriteBatchedAsync(c, [new GroupedKvWrite(caller, writes)], now).ConfigureAwait(false))[0];
        return outcome is ConflictException refused ? throw refused : outcome;
    }

    private Task<object?> Enqueue(LoggedWrite write)
    {
        write.Cancellation.ThrowIfCancellationRequested();
        _logQueue.Enqueue(write);
        if (Interlocked.CompareExchange(ref _logLeader, 1, 0) == 0)
        {
            _ = LeadAsync();
        }
        return write.Task;
    }

    /// <summary>Runs the queued writes in order until the queue is empty; never throws (each write gets its own outcome).</summary>
    private async Task LeadAsync()
    {
        var group = new List<LoggedWrite>(MaxLogGroup);
        while (true)
        {
            group.Clear();
            var sets = 0;
            while (group.Count < MaxLogGroup && _logQueue.TryPeek(out var next))
            {
                if (group.Count > 0 && (!next.Groupable || sets + next.Grouped!.Count > MaxLogGroupSets))
                {
                    break; // it runs alone, or in the next group
                }
                _logQueue.TryDequeue(out _);
                if (next.Cancellation.IsCancellationRequested)
                {
                    next.TrySetCanceled(next.Cancellation); // cancelled while it waited: never run
                    continue;
                }
                sets += next.Grouped?.Count ?? 0;
                group.Add(next);
                if (!next.Groupable)
                {
                    break;
                }
            }
            if (group.Count == 0)
            {
                Volatile.Write(ref _logLeader, 0);
                // A write queued after the last look but before the line above found a leader still at work: lead again.
                if (_logQueue.IsEmpty || Interlocked.CompareExchange(ref _logLeader, 1, 0) != 0)
                {
                    return;
                }
                continue;
            }
            if (!(group.Count > 1 && await TryRunGroupAsync(group).ConfigureAwait(false)))
            {
                foreach (var write in group)
                {
                    await RunAloneAsync(write).ConfigureAwait(false);
                }
            }
            FoldCountsNowAndThen();
            RefreshKvStatisticsNowAndThen();
        }
    }

    /// <summary>One write in a transaction of its own (as every logged write ran before groups).</summary>
    private async Task RunAloneAsync(LoggedWrite write)
    {
        if (write.Groupable)
        {
            Count(1);
        }
        try
        {
            write.TrySetResult(await InLogTransactionAsync(write.Run, write.Durability).ConfigureAwait(false));
        }
        catch (Exception ex)
        {
            write.TrySetException(ex);
        }
    }

    /// <summary>
    /// The group's SETs in one transaction; false when it rolled back for a reason other than the database being away
    /// (the caller then runs each alone). Every write of the group has its outcome when this returns true.
    /// </summary>
    private async Task<bool> TryRunGroupAsync(List<LoggedWrite> group)
    {
        object?[] outcomes;
        try
        {
            var durability = group.Exists(w => w.Durability == WriteDurability.Full) ? WriteDurability.Full : WriteDurability.Relaxed;
            outcomes = await InLogTransactionAsync(async c =>
            {
                // New outcomes on every attempt (a serialization failure runs it all again); a SET whose condition
                // failed has written nothing and gets its ConflictException.
                return (object?)await WriteBatchedAsync(c, [.. group.Select(w => w.Grouped!)], NowMs).ConfigureAwait(false);
            }, durability).ConfigureAwait(false) as object?[] ?? throw new InvalidOperationException("a group returned no outcomes");
        }
        catch (StoreUnavailableException away)
        {
            foreach (var write in group)
            {
                write.TrySetException(away);
            }
            return true;
        }
        catch (Exception)
        {
            return false;
        }
        Count(group.Count);
        for (var i = 0; i < group.Count; i++)
        {
            if (outcomes[i] is Exception refused)
            {
                group[i].TrySetException(refused);
            }
            else
            {
                group[i].TrySetResult(outcomes[i]);
            }
        }
        return true;
    }

    private void Count(int sets)
    {
        Interlocked.Increment(ref _logGroups);
        InterlockedMax.Raise(ref _largestLogGroup, sets);
    }

    /// <summary>The log lock, the work, the notification of the new entries, the commit.</summary>
    private Task<object?> InLogTransactionAsync(Func<NpgsqlConnection, Task<object?>> work, WriteDurability durability) =>
        WriteAsync(async c =>
        {
            await LockLogAsync(c, durability).ConfigureAwait(false);
            var result = await work(c).ConfigureAwait(false);
            await MoveHeadAndNotifyAsync(c).ConfigureAwait(false);
            return result;
        }, durability, durabilitySetByWrite: true, CancellationToken.None); // queued writes are not cancelled once they run

    /// <summary>
    /// A queued key-value write that may share a group's transaction: SETs (a SET or an MSET's keys, <see cref="Writes"/>), or
    /// a change of one key (<see cref="Change"/>; no writes).
    /// </summary>
    private sealed record GroupedKvWrite(Caller Caller, IReadOnlyList<KvWrite> Writes, KeyChange? Change = null)
    {
        /// <summary>The keys it writes, as a group's bound (<see cref="MaxLogGroupSets"/>) counts them.</summary>
        public int Count => Change is null ? Writes.Count : 1;
    }

    /// <summary>
    /// A change of one key: <see cref="Decide"/> gets the key's live entry (null: missing or expired) and the time, and says
    /// what to write; quick and free of side effects (it runs again when its group's transaction is retried or falls apart).
    /// </summary>
    private sealed record KeyChange(string StoredKey, Func<KvEntry?, long, KeyDecision> Decide);

    /// <summary>What a <see cref="KeyChange"/> writes (<see cref="KvChange.Keep"/>: nothing), the history event of a SET, and what the caller gets.</summary>
    private readonly record struct KeyDecision(KvChange Change, string Event, object? Outcome);

    /// <summary>
    /// A queued write: <see cref="Grouped"/> is set for the key-value writes a group may take (<see cref="Groupable"/>), null
    /// for any other. Continuations run on the pool, not on the leader, which goes on with the next group.
    /// </summary>
    private sealed class LoggedWrite(Func<NpgsqlConnection, Task<object?>> run, GroupedKvWrite? grouped, WriteDurability durability,
        CancellationToken cancellation) : TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public Func<NpgsqlConnection, Task<object?>> Run => run;

        public GroupedKvWrite? Grouped => grouped;

        public bool Groupable => grouped is not null;

        public WriteDurability Durability => durability;

        public CancellationToken Cancellation => cancellation;
    }
}
