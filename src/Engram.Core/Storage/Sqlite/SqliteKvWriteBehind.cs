using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using Engram.Core.KeyValue;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// A key of a tenant: where a key-value entry lives. Its hash is computed once, when it is made: a write looks its slot up
/// in three tables (staged, committed, readable) and a string hash of tenant and key each time was a visible part of the
/// writer's time (bench/README.md, session 27).
/// </summary>
internal readonly struct KvSlot(string tenant, string key) : IEquatable<KvSlot>
{
    private readonly int _hash = Hash(tenant, key);

    public string Tenant { get; } = tenant;

    public string Key { get; } = key;

    public bool Equals(KvSlot other) =>
        _hash == other._hash && string.Equals(Key, other.Key, StringComparison.Ordinal) && string.Equals(Tenant, other.Tenant, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is KvSlot other && Equals(other);

    public override int GetHashCode() => _hash;

    public override string ToString() => $"{Tenant}/{Key}";

    /// <summary>The hash of a slot; a key's characters hash alike as a string or a span.</summary>
    public static int Hash(string tenant, ReadOnlySpan<char> key) => HashCode.Combine(tenant.GetHashCode(), string.GetHashCode(key));
}

/// <summary>A slot whose key is still in a caller's buffer: the RESP GET looks its key up without making a string.</summary>
internal readonly ref struct KvSlotSpan(string tenant, ReadOnlySpan<char> key)
{
    public string Tenant { get; } = tenant;

    public ReadOnlySpan<char> Key { get; } = key;
}

/// <summary>Compares slots, and a <see cref="KvSlotSpan"/> with a slot (the key states' alternate look-up).</summary>
internal sealed class KvSlotComparer : IEqualityComparer<KvSlot>, IAlternateEqualityComparer<KvSlotSpan, KvSlot>
{
    public static readonly KvSlotComparer Instance = new();

    public bool Equals(KvSlot x, KvSlot y) => x.Equals(y);

    public int GetHashCode(KvSlot obj) => obj.GetHashCode();

    public bool Equals(KvSlotSpan alternate, KvSlot other) =>
        alternate.Key.SequenceEqual(other.Key) && string.Equals(alternate.Tenant, other.Tenant, StringComparison.Ordinal);

    public int GetHashCode(KvSlotSpan alternate) => KvSlot.Hash(alternate.Tenant, alternate.Key);

    public KvSlot Create(KvSlotSpan alternate) => new(alternate.Tenant, alternate.Key.ToString());
}

/// <summary>
/// The newest state of a key that <c>kv_entries</c> may not show yet: the entry (null once deleted),
/// the head of its history chain, the change-log seq of its last change, and the oldest history row
/// of the key that the table does not reflect (what recovery must replay from).
/// </summary>
internal sealed record KvHot(KvEntry? Entry, long LastHid, long Seq, long FirstUnfoldedHid)
{
    /// <summary>A key the tables know nothing of, remembered so that a GET of a missing key does not ask SQLite each time.</summary>
    public static readonly KvHot Absent = new(null, 0, 0, 0);

    /// <summary>
    /// Non-zero for a state a journaled SET published (<see cref="SqliteKvJournal"/>): what readers see while its record
    /// waits to be applied. The number is the record's. Its history ids are those of the state it was computed from (the
    /// record has none yet); the writer never computes from it, and nothing drops it before its record is applied.
    /// </summary>
    public long Journaled { get; init; }

    /// <summary>
    /// The value's length in characters, read once, while the new entry is in the processor's cache. A write subtracts the
    /// size of the state it replaces, and with 100,000 keys reading that state's value (long out of the cache) again was a
    /// quarter of a journaled SET's look-up time (bench/README.md, session 42).
    /// </summary>
    private readonly int _valueChars = Entry?.ValueJson.Length ?? 0;

    /// <summary>What the cache counts this state as holding: the objects, the key and the value (UTF-16).</summary>
    public static long EstimateBytes(KvSlot slot, KvHot state) =>
        StateOverheadBytes + 2L * (slot.Tenant.Length + slot.Key.Length + state._valueChars);

    /// <summary>The dictionary node, this record, the entry and the strings' headers (measured order of magnitude).</summary>
    private const long StateOverheadBytes = 240;
}

/// <summary>
/// Write-behind for key-value entries. A write appends its history row and change-log entry (what
/// makes it durable) and leaves the key's new state here instead of updating <c>kv_entries</c>:
/// an update there dirties one random B-tree page per key, which the WAL then writes, checksums and
/// checkpoints; history and change-log rows are appends that share their pages. The states are
/// folded into the table later in chunks, oldest first, so a hot key is written to the table once
/// per fold however often it changed (bench/README.md has the figures).
/// <para>
/// The history is the truth: every history row at or below the <em>watermark</em> (store_meta
/// <c>kv_folded_hid</c>) is reflected in <c>kv_entries</c> / <c>kv_deleted</c>, and any opener
/// replays the rows above it (<see cref="Replay"/>), so a crash loses nothing that was acknowledged.
/// Another process writing the same file (the CLI beside a server) shows up as a new
/// <c>PRAGMA data_version</c>: this process then replays what that process wrote and forgets its own
/// states, which the replay has put into the table.
/// </para>
/// <para>
/// Threads: readers call <see cref="TryGetCommitted"/> from anywhere; everything else runs on the
/// writer's thread. Items stage states (<see cref="Stage"/>); they become visible when the writer
/// reports the commit (<see cref="ITransactionFollower"/>), and are removed only after a fold
/// committed them to the table, so a reader that misses here always finds them in SQL.
/// </para>
/// </summary>
internal sealed class SqliteKvWriteBehind : ITransactionFollower
{
    /// <summary>
    /// Waiting states that start a fold cycle (some 560 bytes each with a 100-byte value). A fold writes each state to a
    /// random page of <c>kv_entries</c>; the more keys one cycle folds, the more of them share a page: with 100,000 keys
    /// written at random, a cycle of 1,024 wrote 0.9 pages per key, one of 65,536 about 0.07 (bench/README.md, session 28).
    /// </summary>
    public const int DefaultHighWater = 65_536;


    /// <summary>States folded per transaction: a cycle folds one chunk after each group, so no write waits long behind it.</summary>
    public const int DefaultChunkSize = 4096;

    /// <summary>History rows above the watermark that start a fold cycle anyway: bounds the replay after a crash.</summary>
    public const long DefaultMaxUnfoldedRows = 262_144;

    /// <summary>Estimated bytes of the waiting states that start a fold cycle (values can be large: a megabyte each).</summary>
    public const long DefaultMaxWaitingBytes = 64L * 1024 * 1024;

    /// <summary><see cref="DefaultHighWater"/> unless a test makes folds come sooner.</summary>
    public int HighWater { get; init; } = DefaultHighWater;

    /// <summary>Waiting states after any group, at most: past it the writer folds more than a chunk per group.</summary>
    public int MaxWaiting => 2 * HighWater;

    public int ChunkSize { get; init; } = DefaultChunkSize;

    public long MaxUnfoldedRows { get; init; } = DefaultMaxUnfoldedRows;

    public long MaxWaitingBytes { get; init; } = DefaultMaxWaitingBytes;

    private const string WatermarkKey = "kv_folded_hid";

    /// <summary>The default bound of <see cref="CacheBytes"/> (Engram:KeyValue:CacheMB).</summary>
    public const long DefaultCacheBytes = 128L * 1024 * 1024;

    private readonly ConcurrentDictionary<KvSlot, KvHot> _committed = new();

    /// <summary>
    /// Held while a journaled SET computes and publishes its state (<see cref="SqliteKvJournal"/>), while the writer runs
    /// a group that reads or writes key states, and while states are published or the cache is cleared: the states
    /// readers see then change in one order.
    /// </summary>
    public Lock StateLock { get; } = new();

    /// <summary>The newest journal record applied by the writer (see <see cref="KvHot.Journaled"/>).</summary>
    private long _appliedJsn;

    /// <summary>The writer applied the journal records up to <paramref name="jsn"/> in the running transaction.</summary>
    public void AppliedJournal(long jsn) => _appliedJsn = Math.Max(_appliedJsn, jsn);

    /// <summary>
    /// Makes <paramref name="state"/>, computed from <paramref name="previous"/> by a journaled SET, what readers see for
    /// <paramref name="slot"/> (under <see cref="StateLock"/>).
    /// </summary>
    public void PublishJournaled(KvSlot slot, KvHot state, KvHot previous)
    {
        _readable[slot] = state;
        Interlocked.Add(ref _cacheBytes, KvHot.EstimateBytes(slot, state) - KvHot.EstimateBytes(slot, previous));
    }
    /// <summary>
    /// What readers look in, a cache of the key states: every committed state (waiting or folded into the table
    /// since), every state the writer loaded from the table, and every state a reader found there (a key the tables
    /// know nothing of as <see cref="KvHot.Absent"/>). A GET, and the writer's look-up of a key's current state, then
    /// cost one dictionary look-up instead of a SQLite query: with 100,000 keys written at random, 7-9 GETs in 10 and
    /// most SETs went to the table before (bench/README.md, session 28). The states not waiting to be folded are
    /// <em>clean</em> (the table holds them) and are dropped when the estimate passes <see cref="CacheBytesLimit"/>;
    /// the waiting ones stay (<see cref="MaxWaiting"/> bounds them). Cleared whenever the tables are caught up with
    /// another process.
    /// </summary>
    private readonly ConcurrentDictionary<KvSlot, KvHot> _readable = new(KvSlotComparer.Instance);
    private readonly ConcurrentDictionary<KvSlot, KvHot>.AlternateLookup<KvSlotSpan> _readableBySpan;

    public SqliteKvWriteBehind() => _readableBySpan = _readable.GetAlternateLookup<KvSlotSpan>();
    /// <summary>
    /// Held while clean states leave <see cref="_readable"/> and while a reader adds what it read: with <see cref="_evictions"/>
    /// it keeps a reader from adding a state it read before a newer one was folded and dropped (see <see cref="Remember"/>).
    /// </summary>
    private readonly Lock _evictLock = new();
    private long _evictions;
    private long _cacheBytes;
    /// <summary>Estimated bytes of the waiting states (<see cref="_committed"/>).</summary>
    private long _waitingBytes;
    /// <summary>The keys of the fold cycle under way, in key order (table order), and the next to fold; null between cycles.</summary>
    private KvSlot[]? _cycle;
    private int _cycleNext;
    /// <summary>
    /// The waiting keys whose state the table does not hold yet (writer thread). A listing or pattern delete reads
    /// <c>kv_entries</c> and first writes the matching waiting states there (<see cref="Flush"/>); without this set every
    /// page wrote every matching waiting state again, and a DBSIZE at 100,000 keys right after a burst of SETs took 42 s
    /// (98 pages, each rewriting 65,000 states). A state written by a flush is taken out when its transaction commits,
    /// and its fold skips the write.
    /// </summary>
    private readonly HashSet<KvSlot> _unflushed = [];
    private int _unflushedCount;
    /// <summary>States the running transaction's flushes wrote: out of <see cref="_unflushed"/> if it commits.</summary>
    private readonly List<(KvSlot Slot, KvHot State)> _flushing = [];
    private readonly List<(KvSlot Slot, KvHot State)> _staged = [];
    private readonly Dictionary<KvSlot, int> _stagedIndex = [];
    /// <summary>Every history row at or below this id is reflected in the tables (store_meta <c>kv_folded_hid</c>).</summary>
    private long _watermark;
    private long _lastHid;
    private long _dataVersion;

    /// <summary>Committed states not folded yet.</summary>
    public int Count => _committed.Count;

    /// <summary>States written to the table by flushes and folds so far (writer thread; elsewhere a recent figure).</summary>
    public long StatesWritten => Volatile.Read(ref _statesWritten);

    private long _statesWritten;

    /// <summary>Whether some committed state is missing from the table, so a listing must <see cref="Flush"/> first (any thread).</summary>
    public bool HasUnflushed => Volatile.Read(ref _unflushedCount) > 0;

    /// <summary>States readers find here: the waiting ones and the clean ones kept for them (counts every entry: not for hot paths).</summary>
    public int ReadableCount => _readable.Count;

    /// <summary>The estimated bytes of the states waiting to be folded (writer thread; elsewhere a recent figure).</summary>
    public long WaitingBytes => Volatile.Read(ref _waitingBytes);

    /// <summary>The estimated bytes of the states readers find here (<see cref="KvHot.EstimateBytes"/>).</summary>
    public long CacheBytes => Volatile.Read(ref _cacheBytes);

    /// <summary>Past this estimate the writer drops clean states until a quarter of it is free again.</summary>
    public long CacheBytesLimit { get; set; } = DefaultCacheBytes;

    /// <summary>
    /// Read before a reader's SQLite read of a key whose state it did not find here, and handed to <see cref="Remember"/>
    /// with what it read.
    /// </summary>
    public long EvictionsSoFar => Volatile.Read(ref _evictions);

    /// <summary>Brings the tables up to date with the history (after a crash, or another process's writes) and starts following.</summary>
    public void Open(SqliteConnection connection) => CatchUp(connection);

    /// <summary>The committed state of <paramref name="slot"/> when the table may be behind it (any thread).</summary>
    public bool TryGetCommitted(KvSlot slot, out KvHot state) => _readable.TryGetValue(slot, out state!);

    /// <summary>
    /// Every key the tables hold a row for or that has a state here (<see cref="KvKeyFilter"/>); null until the first
    /// catch-up built it. Replaced, not cleared: by a catch-up (another process wrote keys it does not know) and when full.
    /// </summary>
    private KvKeyFilter? _keys;

    /// <summary>
    /// False when the key has no state anywhere, neither in the tables nor here: a look-up for it needs no SQLite read
    /// (any thread). A key's bits are set when the writer stages its first state, before any reader can be told of it.
    /// </summary>
    public bool MayHold(string tenant, ReadOnlySpan<char> key) => Volatile.Read(ref _keys)?.MayContain(tenant, key) ?? true;

    /// <summary>The key filter's memory, for the metrics (0 while none is installed).</summary>
    public long KeyFilterBytes => Volatile.Read(ref _keys)?.Bytes ?? 0;

    /// <summary><see cref="TryGetCommitted(KvSlot, out KvHot)"/> for a key not made into a string.</summary>
    public bool TryGetCommitted(string tenant, ReadOnlySpan<char> key, out KvHot state) =>
        _readableBySpan.TryGetValue(new KvSlotSpan(tenant, key), out state!);

    /// <summary>The newest state in the running transaction: staged, else committed; null when the table has it.</summary>
    public KvHot? Find(KvSlot slot) =>
        _stagedIndex.TryGetValue(slot, out var index) ? _staged[index].State
        : _committed.TryGetValue(slot, out var state) ? state
        : null;

    /// <summary>The key's newest state in the running transaction: waiting here, else as the tables hold it (null: they know nothing of it).</summary>
    public KvHot? Current(SqliteConnection c, KvSlot slot)
    {
        if (Find(slot) is { } waiting)
        {
            return waiting;
        }
        if (_readable.TryGetValue(slot, out var known) && known.Journaled == 0)
        {
            // Not staged or waiting, so a clean state: what the table holds.
            return Known(known);
        }
        // Unknown, or a journaled SET's state, which the writer is applying now: the table holds the state before it.
        var loaded = MayHold(slot.Tenant, slot.Key) ? Load(c, slot) : null;
        // On the writer's thread, inside its transaction: the tables show every committed change of this key (states
        // staged by this transaction are found above), so the state is clean and no reader can hold a newer one.
        var state = loaded ?? KvHot.Absent;
        if (CacheBytes < CacheBytesLimit && _readable.TryAdd(slot, state))
        {
            Interlocked.Add(ref _cacheBytes, KvHot.EstimateBytes(slot, state));
        }
        return loaded;
    }

    /// <summary>
    /// Keeps what a reader found in the tables for a key it did not find here (<paramref name="state"/> null: nothing),
    /// unless the cache is full or a key's state has left the cache since <paramref name="evictionsBefore"/> (read with
    /// <see cref="EvictionsSoFar"/> before the read began). A newer state of the key is either still here (the add fails)
    /// or was dropped after its fold committed, after the read began: then the count moved and nothing is added. The
    /// lock makes the check and the add one step against a drop; a reader never waits for it.
    /// </summary>
    public void Remember(KvSlot slot, KvHot? state, long evictionsBefore)
    {
        if (CacheBytesLimit == 0 || !_evictLock.TryEnter())
        {
            return;
        }
        try
        {
            state ??= KvHot.Absent;
            if (CacheBytes >= CacheBytesLimit)
            {
                // Full: make room as the writer would (a server that only reads keeps caching what it reads). The drop
                // counts as an eviction, so this read, begun before it, is not kept; the next one is.
                if (DropDue)
                {
                    DropOverBound();
                }
            }
            else if (_evictions == evictionsBefore && _readable.TryAdd(slot, state))
            {
                Interlocked.Add(ref _cacheBytes, KvHot.EstimateBytes(slot, state));
            }
        }
        finally
        {
            _evictLock.Exit();
        }
    }

    /// <summary>Drops the clean state of a deleted key whose last history row <paramref name="hid"/> was pruned (writer thread).</summary>
    public void ForgetDeleted(KvSlot slot, long hid)
    {
        // (A journaled DEL's state is not the tables': it stays until its record is applied.)
        if (!_readable.TryGetValue(slot, out var state) || state.Entry is not null || state.LastHid != hid || state.Journaled != 0 || _committed.ContainsKey(slot))
        {
            return;
        }
        lock (_evictLock)
        {
            _evictions++;
            if (_readable.TryRemove(new KeyValuePair<KvSlot, KvHot>(slot, state)))
            {
                Interlocked.Add(ref _cacheBytes, -KvHot.EstimateBytes(slot, state));
            }
        }
    }

    /// <summary>
    /// The newest history row of the key that the tables or the write-behind hold, when known here (any thread); null: ask
    /// the tables. A journaled SET's state does not know it (its row is written later): the last applied state does.
    /// </summary>
    public long? HistoryHead(KvSlot slot) =>
        _readable.TryGetValue(slot, out var state) && state.Journaled == 0 ? Known(state)?.LastHid
        : _committed.TryGetValue(slot, out var waiting) ? waiting.LastHid
        : null;

    /// <summary>The state readers see for the key, if any (any thread).</summary>
    public static KvHot? Known(KvHot state) => ReferenceEquals(state, KvHot.Absent) ? null : state;

    /// <summary>Records the key's new state (<paramref name="entry"/> null: deleted) written by history row <paramref name="hid"/>.</summary>
    public void Stage(KvSlot slot, KvEntry? entry, long hid, long seq) => Stage(slot, entry, hid, seq, hid);

    /// <summary>
    /// <see cref="Stage(KvSlot, KvEntry?, long, long)"/> for the last of several history rows the running transaction wrote
    /// for the key, the first of which is <paramref name="firstHid"/> (the oldest row a fold must cover, if nothing waits).
    /// </summary>
    public void Stage(KvSlot slot, KvEntry? entry, long hid, long seq, long firstHid)
    {
        if (_keys is { } keys && !keys.MayContain(slot.Tenant, slot.Key))
        {
            keys.Add(slot.Tenant, slot.Key); // before the commit that lets anyone see the state
        }
        _stagedDuringScan?.Add(KvKeyFilter.Hash(slot.Tenant, slot.Key));
        ref var index = ref CollectionsMarshal.GetValueRefOrAddDefault(_stagedIndex, slot, out var staged);
        var first = staged ? _staged[index].State.FirstUnfoldedHid
            : _committed.TryGetValue(slot, out var committed) ? committed.FirstUnfoldedHid
            : firstHid;
        index = _staged.Count;
        _staged.Add((slot, new KvHot(entry, hid, seq, first)));
    }

    /// <summary>Every state newer than the table, as the running transaction sees it.</summary>
    public IEnumerable<(KvSlot Slot, KvHot State)> View()
    {
        foreach (var (slot, state) in _committed)
        {
            if (!_stagedIndex.ContainsKey(slot))
            {
                yield return (slot, state);
            }
        }
        foreach (var (slot, index) in _stagedIndex)
        {
            yield return (slot, _staged[index].State);
        }
    }

    /// <summary>
    /// Writes the states matching <paramref name="which"/> that the tables do not hold yet, inside the running
    /// transaction, keeping them here (their fold then has nothing to write): for operations that read the
    /// tables themselves (listing, pattern deletes). Only unflushed keys are visited, so paging through a listing
    /// writes each waiting state once, not once per page.
    /// </summary>
    public void Flush(SqliteConnection connection, Func<KvSlot, bool> which)
    {
        foreach (var slot in _unflushed)
        {
            if (!_stagedIndex.ContainsKey(slot) && which(slot) && _committed.TryGetValue(slot, out var state))
            {
                WriteState(connection, slot, state);
                _flushing.Add((slot, state));
                _statesWritten++;
            }
        }
        foreach (var (slot, index) in _stagedIndex)
        {
            if (which(slot))
            {
                var state = _staged[index].State;
                WriteState(connection, slot, state);
                _flushing.Add((slot, state));
                _statesWritten++;
            }
        }
    }

    /// <summary>Writes one state to the tables: the entry, or its removal and the deleted key's history head.</summary>
    public static void WriteState(SqliteConnection c, KvSlot slot, KvHot state)
    {
        if (state.Entry is { } entry)
        {
            c.ExecuteNonQuery(
                "INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) " +
                "ON CONFLICT(tenant, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version, " +
                "seq = excluded.seq, created_at = excluded.created_at, updated_at = excluded.updated_at, last_hid = excluded.last_hid",
                slot.Tenant, slot.Key, entry.ValueJson, entry.ExpiresAtMs, entry.Version, state.Seq, entry.CreatedAtMs, entry.UpdatedAtMs, state.LastHid);
            c.ExecuteNonQuery("DELETE FROM kv_deleted WHERE tenant = ?1 AND key = ?2", slot.Tenant, slot.Key);
        }
        else
        {
            c.ExecuteNonQuery("DELETE FROM kv_entries WHERE tenant = ?1 AND key = ?2", slot.Tenant, slot.Key);
            // The entry held the head of the key's history chain; keep it so the history stays readable.
            c.ExecuteNonQuery("INSERT INTO kv_deleted(tenant, key, last_hid) VALUES (?1, ?2, ?3) ON CONFLICT(tenant, key) DO UPDATE SET last_hid = excluded.last_hid",
                slot.Tenant, slot.Key, state.LastHid);
        }
    }

    public bool InSync(SqliteConnection connection) => DataVersion(connection) == _dataVersion;

    /// <summary>Replays the history above the watermark into the tables; then nothing needs holding here.</summary>
    public void CatchUp(SqliteConnection connection)
    {
        connection.ExecuteNonQuery("BEGIN IMMEDIATE");
        long version;
        long watermark;
        try
        {
            watermark = Replay(connection);
            version = DataVersion(connection);
            connection.ExecuteNonQuery("COMMIT");
        }
        catch
        {
            RollBackOwn(connection); // the writer's next BEGIN must not find this transaction open
            throw;
        }
        _dataVersion = version;
        _watermark = watermark;
        _lastHid = Math.Max(_lastHid, watermark);
        lock (StateLock)
        {
            lock (_evictLock)
            {
                _evictions++;
                long kept = 0;
                foreach (var pair in _readable)
                {
                    // A journaled SET's state stays: its record is applied later, over the tables as they are now.
                    if (pair.Value.Journaled != 0)
                    {
                        kept += KvHot.EstimateBytes(pair.Key, pair.Value);
                    }
                    else
                    {
                        _readable.TryRemove(pair);
                    }
                }
                Volatile.Write(ref _cacheBytes, kept);
            }
        }
        _committed.Clear();
        _unflushed.Clear();
        _flushing.Clear();
        Volatile.Write(ref _unflushedCount, 0);
        _waitingBytes = 0;
        _cycle = null;
        // The tables may hold keys another process wrote: the filter is built anew, at once for a small store (a CLI
        // command opens one and runs a single operation), else on the writer's next turn, and meanwhile says "maybe".
        Volatile.Write(ref _keys, null);
        _keysDue = true;
        (_scan, _stagedDuringScan) = (null, null); // a scan under way may have missed the other process's keys
        if ((connection.ScalarInt64("SELECT max(hid) FROM kv_history") ?? 0) <= KeysScannedAtOnce)
        {
            RebuildKeys(connection);
        }
    }

    /// <summary>
    /// History rows (an upper bound on the keys) up to which a catch-up builds the key filter at once, on the writer's
    /// thread (under ~0.1 s); past it a reader scans the tables and the writer installs the filter on a later turn.
    /// </summary>
    public long KeysScannedAtOnce { get; init; } = 250_000;

    /// <summary>The key filter is to be built on the writer's next turn (after a catch-up of a large store).</summary>
    private bool _keysDue;

    /// <summary>
    /// Reads the hash of every key of the tables on a reader connection, off the writer's thread (set by the store):
    /// the writer then only installs the result. Null: the writer reads the tables itself.
    /// </summary>
    internal Func<Task<List<ulong>>>? ScanKeysOnReader { get; set; }

    /// <summary>A build of the key filter under way: the tables' keys, read by a reader.</summary>
    private Task<List<ulong>>? _scan;

    /// <summary>While <see cref="_scan"/> runs: every key in memory when it began, and every key staged since.</summary>
    private List<ulong>? _stagedDuringScan;

    /// <summary>Builds the key filter anew on the writer's thread, tables and all (at a catch-up of a small store; the benchmark's).</summary>
    internal void RebuildKeys(SqliteConnection c)
    {
        _keysDue = false;
        Install(ScanKeyHashes(c), InMemoryKeyHashes());
    }

    /// <summary>
    /// On the writer's turn, outside a transaction: starts a build when one is due (after a catch-up of a large store, or
    /// when the filter is full), or installs the one whose scan has finished. The scan runs on a reader, so the writer
    /// never stalls for it (0.27-0.45 s a million keys, bench/README.md, session 37); what it cannot see is covered by
    /// the keys in memory when it began and those staged since, and the journaled states added at the swap.
    /// </summary>
    private void BuildKeysOnTurn(SqliteConnection c)
    {
        if (_scan is { } scan)
        {
            if (!scan.IsCompleted)
            {
                return;
            }
            var staged = _stagedDuringScan!;
            (_scan, _stagedDuringScan) = (null, null);
            if (scan.IsCompletedSuccessfully)
            {
                Install(scan.Result, staged);
            }
            else
            {
                _keysDue = true; // a failed read: the next turn tries again
            }
            return;
        }
        if (!_keysDue && _keys is not { Full: true })
        {
            return;
        }
        _keysDue = false;
        if (ScanKeysOnReader is not { } read)
        {
            Install(ScanKeyHashes(c), InMemoryKeyHashes());
            return;
        }
        _stagedDuringScan = InMemoryKeyHashes();
        _scan = read(); // its read transaction begins after this point: every fold committed so far is in it
    }

    /// <summary>Every key of <c>kv_entries</c> and <c>kv_deleted</c>, hashed as <see cref="KvKeyFilter.Hash"/>.</summary>
    internal static List<ulong> ScanKeyHashes(SqliteConnection c)
    {
        var hashes = new List<ulong>();
        using var rows = c.Prepare("SELECT tenant, key FROM kv_entries UNION ALL SELECT tenant, key FROM kv_deleted");
        // Keys decoded into one buffer and the tenant made a string only when it changes (rows come in tenant order):
        // no string per row (0.35-0.49 s a million keys with two, bench/README.md, session 37).
        var tenant = "";
        byte[] tenantBytes = [];
        var chars = new char[1024];
        while (rows.Step())
        {
            var tenantUtf8 = rows.GetBytes(0);
            if (!tenantUtf8.SequenceEqual(tenantBytes))
            {
                tenantBytes = tenantUtf8.ToArray();
                tenant = System.Text.Encoding.UTF8.GetString(tenantBytes);
            }
            var key = rows.GetBytes(1);
            if (key.Length > chars.Length)
            {
                chars = new char[key.Length]; // a UTF-8 key never has more characters than bytes
            }
            hashes.Add(KvKeyFilter.Hash(tenant, chars.AsSpan(0, System.Text.Encoding.UTF8.GetChars(key, chars))));
        }
        return hashes;
    }

    /// <summary>The keys with a state here (waiting, or readable and not a remembered absence), on the writer's thread.</summary>
    private List<ulong> InMemoryKeyHashes()
    {
        var hashes = new List<ulong>(_committed.Count);
        foreach (var slot in _committed.Keys)
        {
            hashes.Add(KvKeyFilter.Hash(slot.Tenant, slot.Key));
        }
        foreach (var (slot, state) in _readable)
        {
            if (state.Entry is not null || state.LastHid != 0)
            {
                hashes.Add(KvKeyFilter.Hash(slot.Tenant, slot.Key));
            }
        }
        return hashes;
    }

    /// <summary>
    /// Makes a filter sized for twice the keys given and swaps it in. Under the state lock for the last step, so a SET
    /// journaled meanwhile (its state is only in the cache until the writer applies it) is in the new filter.
    /// </summary>
    private void Install(List<ulong> tables, List<ulong> memory)
    {
        var filter = new KvKeyFilter(2L * (tables.Count + memory.Count));
        foreach (var hash in tables)
        {
            filter.Add(hash);
        }
        foreach (var hash in memory)
        {
            filter.Add(hash);
        }
        lock (StateLock)
        {
            foreach (var (slot, state) in _readable)
            {
                if (state.Journaled != 0)
                {
                    filter.Add(slot.Tenant, slot.Key);
                }
            }
            Volatile.Write(ref _keys, filter);
        }
    }

    public int Mark() => _staged.Count;

    public void RollBackTo(int mark)
    {
        if (_staged.Count <= mark)
        {
            return;
        }
        _staged.RemoveRange(mark, _staged.Count - mark);
        _flushing.Clear(); // which of them the failed item wrote is not known: those states count as unflushed still
        _stagedIndex.Clear();
        for (var i = 0; i < _staged.Count; i++)
        {
            _stagedIndex[_staged[i].Slot] = i;
        }
    }

    public void RolledBack()
    {
        _staged.Clear();
        _stagedIndex.Clear();
        _flushing.Clear();
    }

    public void Committed()
    {
        using var published = StateLock.EnterScope();
        // A key's last state only: a hot key set many times in one group is published once (its history has every change).
        long added = 0;
        foreach (var index in _stagedIndex.Values)
        {
            var (slot, state) = _staged[index];
            var size = KvHot.EstimateBytes(slot, state);
            _waitingBytes += size - (_committed.TryGetValue(slot, out var waiting) ? KvHot.EstimateBytes(slot, waiting) : 0);
            _committed[slot] = state;
            var known = _readable.TryGetValue(slot, out var before);
            // A journaled SET newer than every record applied here stays what readers see: its record comes later.
            if (!known || before!.Journaled <= _appliedJsn)
            {
                added += size - (known ? KvHot.EstimateBytes(slot, before!) : 0);
                _readable[slot] = state;
            }
            _unflushed.Add(slot);
            _lastHid = Math.Max(_lastHid, state.LastHid);
        }
        foreach (var (slot, state) in _flushing)
        {
            // The table now holds this state; a state published after the flush (in the same group) is newer.
            if (_committed.TryGetValue(slot, out var current) && ReferenceEquals(current, state))
            {
                _unflushed.Remove(slot);
            }
        }
        Volatile.Write(ref _unflushedCount, _unflushed.Count);
        Interlocked.Add(ref _cacheBytes, added);
        RolledBack();
    }

    /// <summary>
    /// Folds the next chunk of the cycle under way, or starts one once a bound is reached. Past the hard bounds (a group
    /// of msets of 1,000 keys each can add far more than a chunk) it folds until they hold again, so memory and the replay
    /// after a crash stay bounded after every group.
    /// </summary>
    public void AfterGroup(SqliteConnection connection)
    {
        if (_cycle is not null || CycleDue)
        {
            FoldChunk(connection);
        }
        while (_committed.Count >= MaxWaiting || _waitingBytes >= 2 * MaxWaitingBytes || _lastHid - _watermark >= 2 * MaxUnfoldedRows)
        {
            FoldChunk(connection);
        }
        BuildKeysOnTurn(connection);
        if (DropDue)
        {
            DropOverBound();
        }
    }

    private bool CycleDue => _committed.Count >= HighWater || _waitingBytes >= MaxWaitingBytes || _lastHid - _watermark >= MaxUnfoldedRows;

    public void Idle(SqliteConnection connection)
    {
        Settle(connection);
        BuildKeysOnTurn(connection);
    }

    /// <summary>Not <see cref="Idle"/>: a store that closes builds no key filter.</summary>
    public void Closing(SqliteConnection connection) => Settle(connection);

    /// <summary>Catches up with another process's writes, or folds whatever waits; drops states past the cache bound.</summary>
    private void Settle(SqliteConnection connection)
    {
        if (!InSyncOutsideTransaction(connection))
        {
            CatchUp(connection);
        }
        else
        {
            // Nothing else to do: finish the cycle under way, then fold whatever still waits.
            while (_cycle is not null || !_committed.IsEmpty)
            {
                FoldChunk(connection);
            }
        }
        if (DropDue)
        {
            DropOverBound();
        }
    }


    /// <summary>
    /// Folds the next <see cref="ChunkSize"/> keys of the cycle (starting one if none is under way: every waiting key, in
    /// key order, so a chunk's writes walk the table's pages in order and neighbours share them). Each key's newest state
    /// is written; a state that changed meanwhile stays waiting. The watermark moves when a cycle ends: to just below the
    /// oldest row of the states still waiting, or to the newest history row. A replay from an older watermark after a
    /// crash is harmless (it skips rows the table reflects).
    /// </summary>
    private void FoldChunk(SqliteConnection c)
    {
        if (_cycle is null)
        {
            var keys = _committed.Keys.ToArray();
            Array.Sort(keys, static (a, b) =>
            {
                var byTenant = string.CompareOrdinal(a.Tenant, b.Tenant);
                return byTenant != 0 ? byTenant : string.CompareOrdinal(a.Key, b.Key);
            });
            (_cycle, _cycleNext) = (keys, 0);
        }
        c.ExecuteNonQuery("BEGIN IMMEDIATE");
        if (!InSync(c))
        {
            c.ExecuteNonQuery("ROLLBACK");
            CatchUp(c); // the replay folds everything, and ends the cycle
            return;
        }
        var folded = new List<KeyValuePair<KvSlot, KvHot>>(Math.Min(ChunkSize, _cycle.Length - _cycleNext));
        var end = Math.Min(_cycleNext + ChunkSize, _cycle.Length);
        var last = end == _cycle.Length;
        long watermark = _watermark;
        try
        {
            for (var i = _cycleNext; i < end; i++)
            {
                if (_committed.TryGetValue(_cycle[i], out var state))
                {
                    if (_unflushed.Contains(_cycle[i])) // else a listing's flush already wrote this very state
                    {
                        WriteState(c, _cycle[i], state);
                        _statesWritten++;
                    }
                    folded.Add(new(_cycle[i], state));
                }
            }
            if (last)
            {
                watermark = WatermarkAfter(c, folded);
                SaveWatermark(c, watermark);
            }
            c.ExecuteNonQuery("COMMIT");
        }
        catch
        {
            RollBackOwn(c);
            _cycle = null; // the next fold starts again from what waits then
            throw;
        }
        foreach (var pair in folded)
        {
            if (_committed.TryRemove(pair)) // readers still find it, now clean, until it is dropped
            {
                _waitingBytes -= KvHot.EstimateBytes(pair.Key, pair.Value);
                _unflushed.Remove(pair.Key);
            }
        }
        Volatile.Write(ref _unflushedCount, _unflushed.Count);
        _watermark = watermark;
        _cycleNext = end;
        if (last)
        {
            _cycle = null;
        }
    }

    /// <summary>
    /// The watermark once <paramref name="folding"/> commits: just below the oldest history row of any state that will
    /// still wait, else the newest history row.
    /// </summary>
    private long WatermarkAfter(SqliteConnection c, List<KeyValuePair<KvSlot, KvHot>> folding)
    {
        var leaving = new Dictionary<KvSlot, KvHot>(folding.Count);
        foreach (var (slot, state) in folding)
        {
            leaving[slot] = state;
        }
        var oldest = long.MaxValue;
        foreach (var (slot, state) in _committed)
        {
            if (!(leaving.TryGetValue(slot, out var folded) && ReferenceEquals(folded, state)))
            {
                oldest = Math.Min(oldest, state.FirstUnfoldedHid);
            }
        }
        return oldest != long.MaxValue ? oldest - 1 : c.ScalarInt64("SELECT max(hid) FROM kv_history") ?? _watermark;
    }

    /// <summary>The cache's part name in <c>/v1/admin/memory</c> and <c>engram_bound_overflow_total</c>.</summary>
    public const string CachePart = SqliteMemoryStore.KvStatesPart;

    /// <summary>
    /// At or past the bound, with clean states worth a quarter of it to drop: waiting states count in the estimate but are never
    /// dropped, so when they alone fill the bound a scan of the dictionary after every group or read would free nothing. At
    /// counts: a reader finds the cache full there and keeps nothing, so a cache that landed exactly on the bound must drop
    /// too, or no reader would keep a state again until a write pushed it past (a stress run caught it: 5 reads, none kept).
    /// </summary>
    private bool DropDue => CacheBytes >= CacheBytesLimit && CacheBytes - WaitingBytes > CacheBytesLimit / 4;

    /// <summary>Drops clean states until a quarter of the bound is free, counting them as the bound's overflow.</summary>
    private void DropOverBound() => Operations.BoundOverflow.Count(CachePart, DropClean(CacheBytesLimit / 4 * 3));

    /// <summary>
    /// Drops clean states (the table has them; the waiting ones stay) until the estimate is at most <paramref name="keepBytes"/>.
    /// Which ones: the first the dictionary lists, an order unrelated to the keys. The walk stops once enough is dropped, so
    /// its cost follows what it frees: it used to walk every state, keeping the first <paramref name="keepBytes"/> and
    /// dropping clean ones after that, and with waiting states filling that tail, each drop at a million new keys walked
    /// 300,000 states (~100 ms) to free a few thousand, and came again after the next few thousand SETs. A walk to the end
    /// recounts the estimate. Any thread.
    /// </summary>
    public int DropClean(long keepBytes)
    {
        var dropped = 0;
        lock (_evictLock) // re-entered from Remember
        {
            _evictions++;
            var excess = CacheBytes - keepBytes;
            long freed = 0, kept = 0;
            var walkedAll = true;
            foreach (var pair in _readable)
            {
                if (freed >= excess && keepBytes > 0)
                {
                    walkedAll = false;
                    break;
                }
                var size = KvHot.EstimateBytes(pair.Key, pair.Value);
                // A state the writer made waiting since is newer than this pair: TryRemove of the pair leaves it.
                if (pair.Value.Journaled == 0 && !_committed.ContainsKey(pair.Key) && _readable.TryRemove(pair))
                {
                    freed += size;
                    dropped++;
                    continue;
                }
                kept += size;
            }
            if (walkedAll)
            {
                Volatile.Write(ref _cacheBytes, kept);
            }
            else
            {
                Interlocked.Add(ref _cacheBytes, -freed);
            }
        }
        return dropped;
    }

    /// <summary>The estimate of every state held, counted one by one (tests compare it with <see cref="CacheBytes"/>).</summary>
    public long RecountCacheBytes()
    {
        long bytes = 0;
        foreach (var pair in _readable)
        {
            bytes += KvHot.EstimateBytes(pair.Key, pair.Value);
        }
        return bytes;
    }

    private static void RollBackOwn(SqliteConnection c)
    {
        if (c.InTransaction)
        {
            c.Execute("ROLLBACK");
        }
    }

    /// <summary>
    /// Applies every history row above the stored watermark that the tables do not reflect yet, in
    /// order, then moves the watermark to the newest row. Idempotent: a row at or below its key's
    /// current head is skipped. Must run inside a write transaction; returns the new watermark.
    /// </summary>
    private static long Replay(SqliteConnection c)
    {
        var from = c.ScalarInt64($"SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = '{WatermarkKey}'") ?? 0;
        var states = new Dictionary<KvSlot, KvHot?>();
        using (var rows = c.Prepare("SELECT hid, tenant, key, seq, event, at, version, value, expires_at FROM kv_history WHERE hid > ?1 ORDER BY hid"))
        {
            rows.Bind(1, from);
            while (rows.Step())
            {
                var hid = rows.GetInt64(0);
                var slot = new KvSlot(rows.GetText(1), rows.GetText(2));
                if (!states.TryGetValue(slot, out var current))
                {
                    current = Load(c, slot);
                }
                if (current is not null && hid <= current.LastHid)
                {
                    continue;
                }
                states[slot] = Apply(current, slot, hid, rows.GetInt64(3), rows.GetText(4), rows.GetInt64(5), rows.GetInt64(6), rows.GetTextOrNull(7),
                    rows.GetInt64OrNull(8));
            }
        }
        foreach (var (slot, state) in states)
        {
            if (state is not null)
            {
                WriteState(c, slot, state);
            }
        }
        var watermark = Math.Max(from, c.ScalarInt64("SELECT max(hid) FROM kv_history") ?? 0);
        SaveWatermark(c, watermark);
        return watermark;
    }

    /// <summary>
    /// One history row applied to the key's state: the same transitions the writes make (a value
    /// written over a missing or expired entry starts a new <c>created_at</c>; a TTL change keeps the value).
    /// </summary>
    private static KvHot? Apply(KvHot? current, KvSlot slot, long hid, long seq, string historyEvent, long at, long version, string? json, long? expiresAtMs)
    {
        var entry = current?.Entry;
        switch (historyEvent)
        {
            case KvEvents.Deleted or KvEvents.Expired:
                return new KvHot(null, hid, seq, hid);
            case KvEvents.TtlChanged:
                return entry is null
                    ? current // a TTL change of a key the table does not hold: nothing to change
                    : new KvHot(entry with { ExpiresAtMs = expiresAtMs, Version = version, UpdatedAtMs = at, LastHistoryId = hid }, hid, seq, hid);
            default:
                var live = entry is not null && entry.IsLiveAt(at);
                return new KvHot(new KvEntry(slot.Key, json ?? "null", expiresAtMs, version, live ? entry!.CreatedAtMs : at, at, hid), hid, seq, hid);
        }
    }

    /// <summary>The key's state as the tables hold it, or null when they know nothing of it.</summary>
    public static KvHot? Load(SqliteConnection c, KvSlot slot)
    {
        using (var statement = c.Prepare("SELECT value, expires_at, version, created_at, updated_at, last_hid, seq FROM kv_entries WHERE tenant = ?1 AND key = ?2"))
        {
            statement.Bind(1, slot.Tenant);
            statement.Bind(2, slot.Key);
            if (statement.Step())
            {
                var last = statement.GetInt64OrNull(5);
                return new KvHot(new KvEntry(slot.Key, statement.GetText(0), statement.GetInt64OrNull(1), statement.GetInt64(2), statement.GetInt64(3),
                    statement.GetInt64(4), last), last ?? 0, statement.GetInt64(6), last ?? 0);
            }
        }
        return c.ScalarInt64("SELECT last_hid FROM kv_deleted WHERE tenant = ?1 AND key = ?2", slot.Tenant, slot.Key) is { } deleted
            ? new KvHot(null, deleted, 0, deleted)
            : null;
    }

    private static void SaveWatermark(SqliteConnection c, long watermark) =>
        c.ExecuteNonQuery("INSERT INTO store_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            WatermarkKey, watermark.ToString(CultureInfo.InvariantCulture));

    private static long DataVersion(SqliteConnection c) => c.ScalarInt64("PRAGMA data_version") ?? 0;

    /// <summary>
    /// Outside a transaction <c>PRAGMA data_version</c> may not have looked at the file since this
    /// connection's last transaction; a read transaction makes SQLite check the WAL for other
    /// connections' commits (without taking the write lock another process may hold).
    /// </summary>
    private bool InSyncOutsideTransaction(SqliteConnection c)
    {
        c.ExecuteNonQuery("BEGIN");
        try
        {
            c.ScalarInt64("SELECT count(*) FROM store_meta");
            return InSync(c);
        }
        finally
        {
            c.ExecuteNonQuery("ROLLBACK");
        }
    }
}
