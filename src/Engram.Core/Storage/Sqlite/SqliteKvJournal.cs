using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Hashing;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Microsoft.Win32.SafeHandles;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The key-value journal: how a relaxed-durability SET is acknowledged without a round trip through the writer.
/// <para>
/// A relaxed SET promises that an acknowledged write survives a crash of the process (not a power loss). Through the
/// writer that costs a hand-off to its thread, a transaction and a thread wake-up back for every group of SETs, and at
/// small groups most of a WAL page per SET (bench/README.md, session 35). Here the caller's own thread computes the key's
/// new state from the state in memory, publishes it to readers, copies a record of the write into this file's memory
/// mapping (in the operating system's page cache at once, so a crash of the process keeps it; see <see cref="CapacityBytes"/>)
/// and answers. The writer applies the waiting records later, in order, through the same code as any SET (history row, change-log seq, write-behind state),
/// many per transaction; once every record in the file is applied, the next is written at its start again (after the
/// header naming the database, SqliteKvJournal.Recovery.cs, which also says how an open tells damage from a torn write).
/// </para>
/// <para>
/// Only unconditional SETs of keys whose state is in memory take this way (<see cref="TryAppend"/>); anything else goes to
/// the writer, whose groups that touch key states first apply every waiting record and hold <see cref="SqliteKvWriteBehind.StateLock"/>
/// until they commit, so the two ways see one order of changes. A record's seq and history id are given when it is
/// applied: the change log stays in commit order. After a crash the next opener applies what the file holds above the
/// store's <c>kv_journal_applied</c> mark. One process owns the file (an exclusive lock); another process on the same
/// store (the CLI beside a server) has no journal and writes through its writer.
/// </para>
/// </summary>
internal sealed unsafe partial class SqliteKvJournal : IWriterGate, IDisposable
{
    /// <summary>Appended to the database's path: <c>engram.db-kvjournal</c>.</summary>
    public const string Suffix = "-kvjournal";

    /// <summary>store_meta key of the newest record applied to the tables.</summary>
    public const string AppliedKey = "kv_journal_applied";

    /// <summary>Records waiting to be applied past which SETs go to the writer (back-pressure from its bounded queue).</summary>
    public const int MaxPending = 65_536;

    /// <summary>
    /// The file's size, reserved on disk when it opens (<c>fallocate</c>) and mapped into memory: a record is copied into the
    /// mapping, not written with a system call (a <c>pwrite</c> per SET was 8% of the CPU of unpipelined SETs, bench/README.md
    /// session 36). The copy is in the operating system's page cache at once, so a crash of the process keeps it, as a
    /// <c>pwrite</c> would; the reservation means that writing into the mapping never needs a block the disk may not have
    /// (which would kill the process with SIGBUS). A batch that does not fit goes to the writer, whose group applies every
    /// record and starts the file again; some 80,000 SETs of 100 bytes fit.
    /// </summary>
    public const int CapacityBytes = 16 * 1024 * 1024;

    /// <summary>Length and CRC-32 of the payload.</summary>
    private const int HeaderBytes = 8;

    /// <summary>
    /// A record's payload before its texts: jsn (8), its place in its batch (4, <see cref="Batch"/>), time (8), expiry (8).
    /// The batch field is what tells a torn last write from damage in the middle of the file (<see cref="Read"/>).
    /// </summary>
    private const int FixedPayloadBytes = 28;

    /// <summary>
    /// A record's place in the batch it was acknowledged with (one <see cref="TryAppend"/>, copied into the file in one go): its
    /// index, and the top bit on the batch's last record. 4 bytes a record, written while the record is serialized anyway.
    /// </summary>
    private static uint Batch(int index, bool last) => (uint)index | (last ? LastInBatch : 0u);

    private const uint LastInBatch = 0x8000_0000;

    /// <summary>
    /// A write waiting to be applied: the caller's partition (tenant and actor), the write and when it was acknowledged.
    /// <paramref name="Kind"/> says what it is (<see cref="RecordKind"/>): a SET, an INCR recorded as the value and expiry it
    /// produced, a DEL of a live key, or a new expiry of a live key (<see cref="KvWrite.ExpiresAtMs"/>; null: PERSIST).
    /// </summary>
    internal readonly record struct Record(long Jsn, Caller Caller, KvWrite Write, long At, RecordKind Kind = RecordKind.Set)
    {
        /// <summary>An INCR (history says <c>incremented</c>).</summary>
        public bool Incremented => Kind == RecordKind.Incremented;
    }

    /// <summary>
    /// What a record is, written as the byte after its texts (none: a SET). A DEL's and an expiry change's value text is
    /// empty. The previous release read any byte there other than 1 as a SET of the (empty) value, so files that may hold
    /// kinds 2 and 3 carry a header of format 3, which that release takes for a damaged header and sets aside unapplied
    /// (SqliteKvJournal.Recovery.cs).
    /// </summary>
    internal enum RecordKind : byte
    {
        Set = 0,
        Incremented = 1,
        Deleted = 2,
        TtlChanged = 3,
    }

    private readonly FileStream _file;
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    /// <summary>The mapping's first byte; null when the file could not be reserved and mapped (SETs then go to the writer).</summary>
    private byte* _base;
    private readonly SqliteKvWriteBehind _states;
    private List<Record> _pending = [];
    /// <summary>Records the writer took for the running group: back to the front of <see cref="_pending"/> if it fails.</summary>
    private List<Record> _applying = [];
    private long _nextJsn;
    private long _fileBytes;
    private byte[] _buffer = new byte[8192];
    /// <summary>The states a batch published so far (reused under the state lock), to undo a batch that does not fit.</summary>
    private (KvSlot Slot, KvHot Before, KvHot After)[] _published = new (KvSlot, KvHot, KvHot)[16];
    /// <summary>False until <see cref="Start"/> (the leftover of a crash applied, the file's header written) and after closing.</summary>
    private bool _accepting;
    /// <summary>A writer group that touches key states holds <see cref="SqliteKvWriteBehind.StateLock"/> (from BeginGroup to EndGroup).</summary>
    private volatile bool _kvGroupRunning;
    /// <summary><see cref="Stopwatch"/> timestamp of the oldest waiting record (the writer's deadline counts from it).</summary>
    private long _firstPendingAt;

    /// <summary>Records waiting that wake the writer at once.</summary>
    public int ApplyBatch { get; set; } = 512;

    /// <summary>
    /// How long the first record waits for others before the writer applies it (ms): nobody waits on it. Tests set
    /// <see cref="Timeout.Infinite"/> (and a huge <see cref="ApplyBatch"/>) to keep records waiting.
    /// </summary>
    public int LingerMs { get; set; } = 2;

    /// <summary>
    /// When the writer should apply the waiting records (<see cref="IWriterGate"/>): at once when a batch waits, else
    /// <see cref="LingerMs"/> after the first. The writer waits for that on its own event; a timer here woke a pool thread
    /// for every batch, which then spun (bench/README.md, session 36).
    /// </summary>
    public int MillisecondsUntilDue()
    {
        var count = Volatile.Read(ref _pendingCount);
        if (count == 0)
        {
            return Timeout.Infinite;
        }
        var linger = LingerMs;
        if (count >= ApplyBatch || linger == 0)
        {
            return 0;
        }
        if (linger == Timeout.Infinite)
        {
            return Timeout.Infinite;
        }
        var waited = Stopwatch.GetElapsedTime(Volatile.Read(ref _firstPendingAt)).TotalMilliseconds;
        return waited >= linger ? 0 : Math.Max(1, (int)Math.Ceiling(linger - waited));
    }

    private SqliteKvJournal(FileStream file, SqliteKvWriteBehind states, long nextJsn, List<Record> leftover)
    {
        _file = file;
        _states = states;
        _nextJsn = nextJsn;
        _pending = leftover;
        _pendingCount = leftover.Count;
        _firstPendingAt = Stopwatch.GetTimestamp();
    }

    /// <summary>Applies records to the tables inside the writer's transaction (the store's SET code); set once, before use.</summary>
    public Action<SqliteConnection, List<Record>>? Apply { get; set; }

    /// <summary>Wakes the writer when its deadline changed (<see cref="MillisecondsUntilDue"/>); set once, before use.</summary>
    public Action? Nudge { get; set; }

    /// <summary>
    /// Records acknowledged and not in the tables yet: waiting, or taken by a writer group that has not committed (any
    /// thread; a recent figure). A read that must see every acknowledged SET queues behind the writer while it is not 0.
    /// </summary>
    public int Pending => Volatile.Read(ref _pendingCount) + Volatile.Read(ref _applyingCount);

    /// <summary>Records waiting for a group (the writer's deadline, <see cref="MillisecondsUntilDue"/>).</summary>
    private int _pendingCount;

    /// <summary>Records the running group took; set before <see cref="_pendingCount"/> drops, so <see cref="Pending"/> never reads 0 early.</summary>
    private int _applyingCount;

    /// <summary>Writes (SETs and increments) acknowledged through the journal so far.</summary>
    public long Appended => Volatile.Read(ref _appended);

    /// <summary>Of <see cref="Appended"/>, the increments.</summary>
    public long Increments => Volatile.Read(ref _increments);

    /// <summary>Of <see cref="Appended"/>, the deletes (a record per live key deleted).</summary>
    public long Deletes => Volatile.Read(ref _deletes);

    /// <summary>Of <see cref="Appended"/>, the expiry changes (EXPIRE and its forms, PERSIST, GETEX with an expiry).</summary>
    public long TtlChanges => Volatile.Read(ref _ttlChanges);

    private long _appended;
    private long _increments;
    private long _deletes;
    private long _ttlChanges;

    /// <summary>
    /// There is a journal beside <paramref name="databasePath"/> and no process owns it: a process that had the store open was
    /// killed, and what its journal holds above the applied mark is in no table until a store is opened on the file.
    /// </summary>
    public static bool IsOrphaned(string databasePath)
    {
        try
        {
            using var file = new FileStream(databasePath + Suffix, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (IOException ex) when (IsHeldByAnotherProcess(ex))
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            // Not this user's to open (a server running as another user owns it, say): a store opened here could not apply it
            // either, so the caller goes on as it did before it asked.
            return false;
        }
    }

    /// <summary>
    /// The file's lock is held by another process: .NET found <c>flock</c> refused with EWOULDBLOCK, which it reports as a
    /// plain <see cref="IOException"/> carrying that errno (a sharing violation on Windows). Every other error carries its own.
    /// </summary>
    private static bool IsHeldByAnotherProcess(IOException ex) =>
        ex.GetType() == typeof(IOException) && ex.HResult == (OperatingSystem.IsWindows() ? unchecked((int)0x80070020) : OperatingSystem.IsLinux() ? 11 : 35);

    /// <summary>
    /// Acknowledges unconditional <paramref name="writes"/> of <paramref name="caller"/>'s partition (in order) if every
    /// key's state is in memory and the journal has room: publishes the new states and writes their records. False: nothing
    /// was done; the caller writes through the writer.
    /// </summary>
    public bool TryAppend(Caller caller, IReadOnlyList<KvWrite> writes, long now, out KvSetResult[]? results)
    {
        results = null;
        bool wake;
        // While a writer group that touches key states runs, it holds the state lock until its commit is published: this
        // SET then goes to the writer too, so a caller (the socket engine's thread, for RESP) never waits for a
        // transaction here. Writes queued and not started yet may be overtaken: nobody was answered for them, so only
        // their own caller ordered them before this one, and that caller says so (afterWritesUnderWay, which never
        // reaches here).
        if (_kvGroupRunning)
        {
            return false;
        }
        for (var i = 0; i < writes.Count; i++)
        {
            if (writes[i].Condition != KvCondition.Always)
            {
                return false; // the writer decides conditions: not worth the state lock, which a test (or a group) may hold
            }
        }
        lock (_states.StateLock)
        {
            if (!HasRoom(writes.Count, MostBytes(caller, writes)))
            {
                return false;
            }
            if (_published.Length < writes.Count)
            {
                _published = new (KvSlot, KvHot, KvHot)[Math.Max(writes.Count, _published.Length * 2)];
            }
            var wasEmpty = _pending.Count == 0;
            var firstJsn = _nextJsn;
            var length = 0;
            var done = new KvSetResult[writes.Count];
            for (var i = 0; i < writes.Count; i++)
            {
                var write = writes[i];
                var slot = new KvSlot(caller.Tenant, write.StoredKey);
                // Looked up once (a key written twice in the batch finds the state its first write published). A key whose
                // state is not in memory (unless it never had one) sends the whole batch to the writer:
                // what this one published is undone.
                if (!TryGetState(slot, out var before))
                {
                    Undo(i, firstJsn);
                    return false;
                }
                var live = before!.Entry is { } current && current.IsLiveAt(now);
                var jsn = _nextJsn++;
                var after = Publish(slot, before, write, live, now, jsn);
                _published[i] = (slot, before, after);
                done[i] = new KvSetResult(!live, after.Entry!.Version, 0);
                var record = new Record(jsn, caller, write, now);
                _pending.Add(record);
                length = Serialize(record, length, Batch(i, i == writes.Count - 1));
            }
            Array.Clear(_published, 0, writes.Count);
            results = done;
            wake = Written(length, writes.Count, wasEmpty);
        }
        if (wake)
        {
            Nudge?.Invoke();
        }
        return true;
    }

    /// <summary>
    /// Acknowledges an INCR (INCRBY, DECR…) of a key whose state is in memory, as <see cref="TryAppend"/> does a SET: the
    /// new value comes from the state readers see, which holds every write acknowledged before (journaled or committed), so
    /// the writer reaches the same value when it applies the record. A value that is not an integer, or overflow, throws
    /// <see cref="ConflictException"/> with nothing written, as the writer's increment does. False: nothing was done; the
    /// caller increments through the writer.
    /// </summary>
    public bool TryIncrement(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, bool textIntegers, long now, out long value)
    {
        value = 0;
        bool wake;
        if (_kvGroupRunning)
        {
            return false; // as in TryAppend: a caller never waits for a writer group here
        }
        lock (_states.StateLock)
        {
            // The longest value an increment writes is a 64-bit integer's 20 characters.
            var slot = new KvSlot(caller.Tenant, storedKey);
            if (!HasRoom(1, HeaderBytes + MostPayloadBytes(caller, storedKey, 20)) || !TryGetState(slot, out var before))
            {
                return false;
            }
            var current = before.Entry;
            var live = current is not null && current.IsLiveAt(now);
            var next = KvWrites.Increment(caller, storedKey, live ? current : null, by, textIntegers);
            var write = new KvWrite(storedKey, next.ToString(CultureInfo.InvariantCulture), live ? current!.ExpiresAtMs : expiresAtMsIfNew);
            var wasEmpty = _pending.Count == 0;
            var jsn = _nextJsn++;
            Publish(slot, before, write, live, now, jsn);
            var record = new Record(jsn, caller, write, now, RecordKind.Incremented);
            _pending.Add(record);
            wake = Written(Serialize(record, 0, Batch(0, last: true)), 1, wasEmpty);
            Interlocked.Increment(ref _increments);
            value = next;
        }
        if (wake)
        {
            Nudge?.Invoke();
        }
        return true;
    }

    /// <summary>
    /// Acknowledges a DEL (UNLINK) of <paramref name="storedKeys"/> (distinct) when every key's state is in memory, as
    /// <see cref="TryAppend"/> does a SET: each live key is deleted (readers see it missing at once) and gets a record, all
    /// of them copied as one batch (a torn one is dropped whole after a crash, as an MSET's); a key that is missing or
    /// expired is left alone, as the writer's DEL leaves it. <paramref name="deleted"/>: how many were live. False: nothing
    /// was done; the caller deletes through the writer.
    /// </summary>
    public bool TryDelete(Caller caller, IReadOnlyList<string> storedKeys, long now, out int deleted)
    {
        deleted = 0;
        bool wake;
        if (_kvGroupRunning)
        {
            return false; // as in TryAppend: a caller never waits for a writer group here
        }
        long most = 0;
        for (var i = 0; i < storedKeys.Count; i++)
        {
            most += HeaderBytes + MostPayloadBytes(caller, storedKeys[i], 0);
        }
        lock (_states.StateLock)
        {
            if (!HasRoom(storedKeys.Count, most))
            {
                return false;
            }
            if (_published.Length < storedKeys.Count)
            {
                _published = new (KvSlot, KvHot, KvHot)[Math.Max(storedKeys.Count, _published.Length * 2)];
            }
            var wasEmpty = _pending.Count == 0;
            var firstJsn = _nextJsn;
            var count = 0;
            for (var i = 0; i < storedKeys.Count; i++)
            {
                var slot = new KvSlot(caller.Tenant, storedKeys[i]);
                if (!TryGetState(slot, out var before))
                {
                    Undo(count, firstJsn);
                    return false;
                }
                if (before.Entry is not { } current || !current.IsLiveAt(now))
                {
                    continue; // nothing to delete: no record, as the writer writes nothing for it
                }
                var jsn = _nextJsn++;
                var after = new KvHot(null, before.LastHid, before.Seq, before.FirstUnfoldedHid) { Journaled = jsn };
                _states.PublishJournaled(slot, after, before);
                _published[count++] = (slot, before, after);
                _pending.Add(new Record(jsn, caller, new KvWrite(storedKeys[i], "", null), now, RecordKind.Deleted));
            }
            Array.Clear(_published, 0, count);
            deleted = count;
            if (count == 0)
            {
                return true;
            }
            var length = 0;
            for (var i = 0; i < count; i++)
            {
                length = Serialize(_pending[_pending.Count - count + i], length, Batch(i, i == count - 1));
            }
            wake = Written(length, count, wasEmpty);
            Interlocked.Add(ref _deletes, count);
        }
        if (wake)
        {
            Nudge?.Invoke();
        }
        return true;
    }

    /// <summary>
    /// Acknowledges an atomic update of a key whose state is in memory (EXPIRE and its forms, PERSIST, GETEX with an expiry,
    /// GETDEL: <c>UpdateKvAsync</c>) when its change is a delete or a new expiry, or nothing: <paramref name="decide"/> runs on
    /// the live entry readers see (null: missing or expired), which holds every write acknowledged before, under the state
    /// lock. A delete or a new expiry of the live entry is published and recorded as <see cref="TryDelete"/> records a DEL;
    /// nothing to change (or a change of a key that is not live) writes nothing. What <paramref name="decide"/> throws comes
    /// out of here with nothing written. False, with nothing done: the decision is a new value (the writer makes it,
    /// running <paramref name="decide"/> again), or only the tables know the key, or no room; the caller goes to the writer.
    /// </summary>
    public bool TryUpdate(Caller caller, string storedKey, Func<KvEntry?, long, KvChange> decide, long now, out KvUpdated result)
    {
        result = default!;
        bool wake;
        if (_kvGroupRunning)
        {
            return false;
        }
        lock (_states.StateLock)
        {
            var slot = new KvSlot(caller.Tenant, storedKey);
            if (!HasRoom(1, HeaderBytes + MostPayloadBytes(caller, storedKey, 0)) || !TryGetState(slot, out var before))
            {
                return false;
            }
            var live = before.Entry is { } current && current.IsLiveAt(now) ? current : null;
            var change = decide(live, now);
            if (change.Kind == KvChangeKind.Set)
            {
                return false;
            }
            if (live is null || change.Kind is not (KvChangeKind.Delete or KvChangeKind.Expire))
            {
                result = new KvUpdated(live, false); // what the writer answers: nothing written
                return true;
            }
            var wasEmpty = _pending.Count == 0;
            var jsn = _nextJsn++;
            Record record;
            if (change.Kind == KvChangeKind.Delete)
            {
                _states.PublishJournaled(slot, new KvHot(null, before.LastHid, before.Seq, before.FirstUnfoldedHid) { Journaled = jsn }, before);
                record = new Record(jsn, caller, new KvWrite(storedKey, "", null), now, RecordKind.Deleted);
                Interlocked.Increment(ref _deletes);
            }
            else
            {
                // As the writer's ExpireKv: the value and creation stay, the version rises, the update time is now.
                var entry = live with { ExpiresAtMs = change.ExpiresAtMs, Version = live.Version + 1, UpdatedAtMs = now };
                _states.PublishJournaled(slot, new KvHot(entry, before.LastHid, before.Seq, before.FirstUnfoldedHid) { Journaled = jsn }, before);
                record = new Record(jsn, caller, new KvWrite(storedKey, "", change.ExpiresAtMs), now, RecordKind.TtlChanged);
                Interlocked.Increment(ref _ttlChanges);
            }
            _pending.Add(record);
            wake = Written(Serialize(record, 0, Batch(0, last: true)), 1, wasEmpty);
            result = new KvUpdated(live, true);
        }
        if (wake)
        {
            Nudge?.Invoke();
        }
        return true;
    }

    /// <summary>
    /// Publishes the key's state after <paramref name="write"/> to readers and returns it: the same transition the writer
    /// makes (SetOne), which recomputes it from the tables when it applies the record.
    /// </summary>
    private KvHot Publish(KvSlot slot, KvHot before, KvWrite write, bool live, long now, long jsn)
    {
        var current = before.Entry;
        var entry = new KvEntry(write.StoredKey, write.ValueJson, write.ExpiresAtMs, (current?.Version ?? 0) + 1, live ? current!.CreatedAtMs : now,
            now, before.LastHid == 0 ? null : before.LastHid);
        var after = new KvHot(entry, before.LastHid, before.Seq, before.FirstUnfoldedHid) { Journaled = jsn };
        _states.PublishJournaled(slot, after, before);
        return after;
    }

    /// <summary>Whether <paramref name="records"/> more records of at most <paramref name="mostBytes"/> fit (under the state lock).</summary>
    private bool HasRoom(int records, long mostBytes) =>
        _accepting && _pending.Count + records <= MaxPending && _fileBytes + mostBytes <= CapacityBytes;

    /// <summary>
    /// Copies the <paramref name="length"/> bytes of records serialized into the buffer to the file and counts them
    /// (under the state lock); returns whether the writer must be told its deadline moved.
    /// </summary>
    private bool Written(int length, int records, bool wasEmpty)
    {
        // Into the page cache with a copy, no system call: a crash of this process from here on keeps the records.
        _buffer.AsSpan(0, length).CopyTo(new Span<byte>(_base + _fileBytes, length));
        _fileBytes += length;
        if (wasEmpty)
        {
            Volatile.Write(ref _firstPendingAt, Stopwatch.GetTimestamp());
        }
        Volatile.Write(ref _pendingCount, _pending.Count);
        Interlocked.Add(ref _appended, records);
        // The writer applies once a batch waits, or a short while after the first record (applying a dozen records at a
        // time, what unpipelined clients made it do, cost a transaction and most of a WAL page for each few). It is
        // told when its deadline moves: at the first record and when the batch is full.
        return wasEmpty || (_pending.Count >= ApplyBatch && _pending.Count - records < ApplyBatch);
    }

    /// <summary>
    /// The key's state as readers see it, or <see cref="KvHot.Absent"/> for a key that never had one (a new key is
    /// journaled like a known one); false when only the tables can tell. Under the state lock, so no writer group stages
    /// a state meanwhile.
    /// </summary>
    private bool TryGetState(KvSlot slot, out KvHot state)
    {
        if (_states.TryGetCommitted(slot, out state))
        {
            return true;
        }
        state = KvHot.Absent;
        return !_states.MayHold(slot.Tenant, slot.Key);
    }

    /// <summary>Takes back the first <paramref name="count"/> writes of a batch that turned out not to fit: readers see the states before them again.</summary>
    private void Undo(int count, long firstJsn)
    {
        for (var i = count - 1; i >= 0; i--)
        {
            var (slot, before, after) = _published[i];
            _states.PublishJournaled(slot, before, after);
        }
        Array.Clear(_published, 0, count);
        _pending.RemoveRange(_pending.Count - count, count);
        _nextJsn = firstJsn;
    }

    /// <summary>The most bytes the records of <paramref name="writes"/> can take in the file.</summary>
    private static long MostBytes(Caller caller, IReadOnlyList<KvWrite> writes)
    {
        long most = 0;
        foreach (var write in writes)
        {
            most += HeaderBytes + MostPayloadBytes(caller, write);
        }
        return most;
    }

    /// <summary>The most bytes a record's payload can take: the fixed fields, four lengths, every text's UTF-8 at its longest, a mark.</summary>
    private static int MostPayloadBytes(Caller caller, KvWrite write) => MostPayloadBytes(caller, write.StoredKey, write.ValueJson.Length);

    private static int MostPayloadBytes(Caller caller, string storedKey, int valueChars) =>
        FixedPayloadBytes + 16 + 1 + Encoding.UTF8.GetMaxByteCount(caller.Tenant.Length + caller.Actor.Length + storedKey.Length + valueChars);

    /// <summary>
    /// Reserves the file's <see cref="CapacityBytes"/> on disk and maps it; without both (not Linux, a file system without
    /// <c>fallocate</c>, a full disk) the journal takes no SETs and only applies what an earlier run left in it.
    /// </summary>
    private void Map()
    {
        if (!OperatingSystem.IsLinux())
        {
            _accepting = false;
            return;
        }
        var fd = (int)_file.SafeFileHandle.DangerousGetHandle();
        if (Fallocate(fd, 0, 0, CapacityBytes) != 0)
        {
            _accepting = false;
            return;
        }
        try
        {
            // A file an earlier run left longer (a torn record past the reserved size) is mapped whole; appends stay below CapacityBytes.
            var mapped = Math.Max(CapacityBytes, RandomAccess.GetLength(_file.SafeFileHandle));
            _map = MemoryMappedFile.CreateFromFile(_file, mapName: null, mapped, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
            _view = _map.CreateViewAccessor(0, mapped, MemoryMappedFileAccess.ReadWrite);
            byte* pointer = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            _base = pointer + _view.PointerOffset;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Unmap();
            _accepting = false;
        }
    }

    private void Unmap()
    {
        if (_base != null)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
        _view = null;
        _map = null;
    }

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(int fd, int mode, long offset, long length);

    /// <summary>Stops acknowledging SETs (the store is closing): the ones that come go to the writer.</summary>
    public void StopAccepting()
    {
        lock (_states.StateLock)
        {
            _accepting = false;
        }
    }

    /// <summary>
    /// The writer is about to run a group (<paramref name="touchesKv"/>: one whose items read or write key states). Such a
    /// group holds the state lock until <see cref="EndGroup"/>; every group first applies the records waiting, in the
    /// returned item.
    /// </summary>
    public Func<SqliteConnection, int>? BeginGroup(bool touchesKv)
    {
        if (touchesKv)
        {
            _states.StateLock.Enter();
            _kvGroupRunning = true;
        }
        lock (_states.StateLock)
        {
            if (_pending.Count == 0)
            {
                return null;
            }
            (_applying, _pending) = (_pending, _applying);
            Volatile.Write(ref _applyingCount, _applying.Count);
            Volatile.Write(ref _pendingCount, 0);
        }
        var apply = Apply ?? throw new InvalidOperationException("the journal has no Apply");
        var records = _applying;
        return c =>
        {
            apply(c, records);
            return 0;
        };
    }

    /// <summary>
    /// The group ended; <paramref name="applied"/>: its records committed. Otherwise they wait again, first. Once nothing
    /// waits, every record in the file is in the tables and the next one is written at the file's start.
    /// </summary>
    public void EndGroup(bool touchesKv, bool applied)
    {
        try
        {
            lock (_states.StateLock)
            {
                if (_applying.Count > 0)
                {
                    if (!applied)
                    {
                        // Tried again a while later (a disk that is full stays full for more than the linger).
                        Volatile.Write(ref _firstPendingAt, Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10);
                        _pending.InsertRange(0, _applying);
                        Volatile.Write(ref _pendingCount, _pending.Count);
                    }
                    _applying.Clear();
                    Volatile.Write(ref _applyingCount, 0);
                }
                if (_pending.Count == 0)
                {
                    // Every record in the file is applied: the next is written at its start, over pages the file already
                    // has (emptying it made the system free and zero them again on every cycle: 8% of the CPU under load).
                    // What lies beyond the records written since is older and applied: a replay skips it.
                    _fileBytes = FileHeaderBytes;
                }
            }
        }
        finally
        {
            if (touchesKv)
            {
                _kvGroupRunning = false;
                _states.StateLock.Exit();
            }
        }
    }

    public void Dispose()
    {
        lock (_states.StateLock)
        {
            _accepting = false;
            Unmap(); // (no append runs: they take this lock and see _accepting)
            var empty = _pending.Count == 0 && _applying.Count == 0;
            if (empty)
            {
                // Everything is in the tables: no file is left beside a closed store.
                try
                {
                    File.Delete(_file.Name);
                }
                catch (IOException)
                {
                    // Left as it is: every record in it is at or below the applied mark, which a replay skips.
                }
            }
            _file.Dispose();
        }
    }

    /// <summary>Appends the record at <paramref name="offset"/> of the buffer; returns the new length.</summary>
    private int Serialize(in Record record, int offset, uint batch)
    {
        var tenant = record.Caller.Tenant;
        var actor = record.Caller.Actor;
        var key = record.Write.StoredKey;
        var json = record.Write.ValueJson;
        var most = MostPayloadBytes(record.Caller, record.Write);
        if (_buffer.Length < offset + HeaderBytes + most)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, offset + HeaderBytes + most));
        }
        var payload = _buffer.AsSpan(offset + HeaderBytes);
        BinaryPrimitives.WriteInt64LittleEndian(payload, record.Jsn);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], batch);
        BinaryPrimitives.WriteInt64LittleEndian(payload[12..], record.At);
        BinaryPrimitives.WriteInt64LittleEndian(payload[20..], record.Write.ExpiresAtMs ?? long.MinValue);
        var at = FixedPayloadBytes;
        at += WriteText(payload[at..], tenant);
        at += WriteText(payload[at..], actor);
        at += WriteText(payload[at..], key);
        at += WriteText(payload[at..], json);
        if (record.Kind != RecordKind.Set)
        {
            payload[at++] = (byte)record.Kind;
        }
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(offset), at);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(offset + 4), Crc32.HashToUInt32(payload[..at]));
        return offset + HeaderBytes + at;
    }

    private static int WriteText(Span<byte> to, string text)
    {
        var length = Encoding.UTF8.GetBytes(text, to[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(to, length);
        return 4 + length;
    }

}
