using Engram.Core.Common;
using Engram.Core.Storage;

namespace Engram.Core.KeyValue;

/// <summary>
/// Key-value state in the same store as memories: confined to <see cref="Caller.Tenant"/>; every
/// change writes the entry, a history entry and a change-log entry (entity "kv") in one transaction,
/// acknowledged only after commit. Keys here are stored keys (<see cref="KvKeys.ToStored"/> applied).
/// An entry whose expiry has passed is never returned and counts as missing for nx/xx and incr.
/// Writes take the durability they are acknowledged with (Engram:KeyValue:Durability).
/// </summary>
public interface IKeyValueStore
{
    /// <summary>
    /// Throws <see cref="ConflictException"/> when the write's condition does not hold. <paramref name="afterWritesUnderWay"/>:
    /// the caller handed the store earlier writes it has not heard back from (a RESP pipeline), and this one must take
    /// effect after them; otherwise the store may acknowledge it ahead of writes other callers queued (the SQLite
    /// key-value journal does), which is fine for writes nobody ordered.
    /// </summary>
    Task<KvSetResult> SetKvAsync(Caller caller, KvWrite write, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default);

    /// <summary>All writes in one transaction: a failing condition fails them all (<paramref name="afterWritesUnderWay"/>: as for <see cref="SetKvAsync"/>).</summary>
    Task<IReadOnlyList<KvSetResult>> SetManyKvAsync(Caller caller, IReadOnlyList<KvWrite> writes, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default);

    Task<KvEntry?> GetKvAsync(Caller caller, string storedKey, CancellationToken ct = default);

    /// <summary>
    /// Whether <see cref="GetKvAsync"/> of this key would answer without blocking the calling thread (from memory,
    /// or by asynchronous I/O): the RESP endpoint runs such reads on the socket event thread, and moves any other to
    /// the thread pool first.
    /// </summary>
    bool ReadsKvWithoutBlocking(Caller caller, string storedKey);

    /// <summary>
    /// The key's live entry (null: missing or expired) when the store holds its state in memory, without a task;
    /// false when only <see cref="GetKvAsync"/> can answer. The RESP endpoint's GET.
    /// </summary>
    bool TryGetKvFromMemory(Caller caller, ReadOnlySpan<char> storedKey, out KvEntry? entry);

    /// <summary>In the order given; null where the key is missing or expired.</summary>
    Task<IReadOnlyList<KvEntry?>> GetManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, CancellationToken ct = default);

    /// <summary>Returns whether a live entry was deleted (<paramref name="afterWritesUnderWay"/>: as for <see cref="SetKvAsync"/>).</summary>
    Task<bool> DeleteKvAsync(Caller caller, string storedKey, WriteDurability durability, bool afterWritesUnderWay = false, CancellationToken ct = default);

    /// <summary>
    /// Deletes the live entries among <paramref name="storedKeys"/> (distinct keys) in one step, as atomic as a
    /// <see cref="TransactKvAsync{T}"/>: each with its history entry and change-log entry, in the order given. Returns
    /// how many were deleted (a multi-key DEL). <paramref name="afterWritesUnderWay"/>: as for <see cref="SetKvAsync"/>.
    /// </summary>
    Task<int> DeleteManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default);

    /// <summary>
    /// Adds <paramref name="by"/> to the integer value inside the write transaction (so concurrent
    /// increments never lose one). A missing key starts at 0 and gets <paramref name="expiresAtMsIfNew"/>;
    /// an existing key keeps its expiry. A value that is not a JSON integer (<paramref name="textIntegers"/>: nor a JSON string
    /// holding one, as Redis reads its values), or overflow: <see cref="ConflictException"/>. <paramref name="afterWritesUnderWay"/>:
    /// as for <see cref="SetKvAsync"/> (a relaxed increment may otherwise be acknowledged ahead of writes queued before it).
    /// </summary>
    Task<long> IncrementKvAsync(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, WriteDurability durability, bool textIntegers = false,
        bool afterWritesUnderWay = false, CancellationToken ct = default);

    /// <summary>
    /// Sets a new expiry (null: never); returns false when there is no live entry. <paramref name="afterWritesUnderWay"/>: as
    /// for <see cref="SetKvAsync"/>.
    /// </summary>
    Task<bool> ExpireKvAsync(Caller caller, string storedKey, long? expiresAtMs, WriteDurability durability, bool afterWritesUnderWay = false,
        CancellationToken ct = default);

    /// <summary>
    /// Reads the key's live entry (null: missing or expired) and makes the change <paramref name="decide"/>
    /// returns for it, in one step that no other write of the key can interleave with (Redis's SET … GET,
    /// GETDEL, GETEX, EXPIRE NX/XX/GT/LT). <paramref name="decide"/> gets the entry and the store's time
    /// (unix ms); it must be quick and free of side effects (it may run twice when a write is retried), and
    /// may throw to refuse (nothing is written). History and change log as for any write. <paramref name="afterWritesUnderWay"/>:
    /// as for <see cref="SetKvAsync"/> (a relaxed delete or expiry change may otherwise be acknowledged ahead of writes queued before it).
    /// </summary>
    Task<KvUpdated> UpdateKvAsync(Caller caller, string storedKey, Func<KvEntry?, long, KvChange> decide, WriteDurability durability,
        bool afterWritesUnderWay = false, CancellationToken ct = default);

    /// <summary>
    /// A multi-key transaction (Redis's MULTI/EXEC): reads the entries of <paramref name="storedKeys"/>, runs
    /// <paramref name="run"/> on them (a <see cref="KvTransaction"/>, which records the changes its commands make) and
    /// writes those changes in order, all in one step that no other write interleaves with; an exception from
    /// <paramref name="run"/> writes nothing. <paramref name="run"/> must be synchronous and may run twice when a write
    /// is retried. History and change log as for any write.
    /// </summary>
    Task<T> TransactKvAsync<T>(Caller caller, IReadOnlyCollection<string> storedKeys, Func<KvTransaction, T> run, WriteDurability durability,
        CancellationToken ct = default);

    /// <summary>Live entries matching <paramref name="pattern"/> in key order, after <paramref name="afterKey"/>.</summary>
    Task<KvStoredPage> ListKvAsync(Caller caller, KvGlob pattern, int limit, string? afterKey, CancellationToken ct = default);

    /// <summary>Counts the live entries matching <paramref name="pattern"/> in one query (no listing, no values read).</summary>
    Task<KvCount> CountKvAsync(Caller caller, KvGlob pattern, CancellationToken ct = default);

    /// <summary>
    /// Deletes the live entries matching <paramref name="pattern"/> in key order after
    /// <paramref name="afterKey"/>, in chunks (one transaction each), until none is left or
    /// another chunk would overrun <paramref name="budget"/> (at least one chunk runs, so a zero budget deletes one chunk).
    /// The result says how many, and where to continue when the budget ran out first.
    /// </summary>
    Task<KvDeleteStep> DeleteMatchingKvAsync(Caller caller, KvGlob pattern, string? afterKey, TimeSpan budget, WriteDurability durability,
        CancellationToken ct = default);

    /// <summary>
    /// The newest <paramref name="limit"/> history entries of the key, starting at the history position
    /// <paramref name="from"/> (a previous page's <see cref="KvHistoryPage.Next"/>; null: the newest entry),
    /// in chronological order; kept after the entry is deleted. The page ends early, with a <see cref="KvHistoryPage.Next"/>,
    /// after the entry that brings its values to <paramref name="maxValueChars"/> characters (it holds one entry at least).
    /// </summary>
    Task<KvHistoryPage> GetKvHistoryAsync(Caller caller, string storedKey, int limit, long? from, long maxValueChars, CancellationToken ct = default);

    /// <summary>
    /// Deletes history entries written before <paramref name="beforeMs"/>, oldest first, in every tenant,
    /// examining up to <paramref name="max"/> entries after position <paramref name="afterHistoryId"/>.
    /// A live key's newest entry is kept however old (its history never becomes empty while it exists);
    /// a deleted key whose last entry goes is forgotten entirely.
    /// </summary>
    Task<KvHistoryPruning> PruneKvHistoryAsync(long beforeMs, long afterHistoryId, int max, CancellationToken ct = default);

    /// <summary>Deletes up to <paramref name="max"/> entries past their expiry, in every tenant, recording "expired".</summary>
    Task<int> DeleteExpiredKvAsync(int max, CancellationToken ct = default);

    /// <summary>
    /// Returns once every write acknowledged before the call is on disk, as a <see cref="WriteDurability.Full"/> write
    /// would be: the writes of a store run with relaxed durability, which are acknowledged before their sync (RESP's
    /// WAITAOF). One sync covers them all, whichever connection or instance wrote them.
    /// </summary>
    Task SyncKvAsync(CancellationToken ct = default);
}
