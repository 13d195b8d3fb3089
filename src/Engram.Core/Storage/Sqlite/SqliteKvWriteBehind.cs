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
    private readonly int _hash = HashCode.Combine(tenant, key);

    public string Tenant { get; } = tenant;

    public string Key { get; } = key;

    public bool Equals(KvSlot other) =>
        _hash == other._hash && string.Equals(Key, other.Key, StringComparison.Ordinal) && string.Equals(Tenant, other.Tenant, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is KvSlot other && Equals(other);

    public override int GetHashCode() => _hash;

    public override string ToString() => $"{Tenant}/{Key}";
}

/// <summary>
/// The newest state of a key that <c>kv_entries</c> may not show yet: the entry (null once deleted),
/// the head of its history chain, the change-log seq of its last change, and the oldest history row
/// of the key that the table does not reflect (what recovery must replay from).
/// </summary>
internal sealed record KvHot(KvEntry? Entry, long LastHid, long Seq, long FirstUnfoldedHid);

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
    /// <summary>States waiting in memory after any group, at most (some 400 bytes each, so about 6 MB).</summary>
    public const int HighWater = 16_384;

    /// <summary>States folded per transaction: large enough to share pages, small enough not to stall writes for long (a few ms).</summary>
    public const int ChunkSize = 1024;

    /// <summary>History rows above the watermark before the writer folds anyway: bounds the replay after a crash.</summary>
    public const long MaxUnfoldedRows = 65_536;

    private const string WatermarkKey = "kv_folded_hid";

    private readonly ConcurrentDictionary<KvSlot, KvHot> _committed = new();
    /// <summary>
    /// What readers look in: every committed state, waiting or already folded into the table. Folded ones are kept (up
    /// to <see cref="HighWater"/> of them beside the waiting ones) so a GET of a key this process wrote is served from
    /// memory, not by a SQLite read (bench/README.md, `resp`), with one lookup whether the key was folded or not. Writes
    /// never consult it (they read the table), and it is cleared whenever the tables are caught up with another process.
    /// </summary>
    private readonly ConcurrentDictionary<KvSlot, KvHot> _readable = new();
    private readonly List<(KvSlot Slot, KvHot State)> _staged = [];
    private readonly Dictionary<KvSlot, int> _stagedIndex = [];
    /// <summary>Every history row at or below this id is reflected in the tables (store_meta <c>kv_folded_hid</c>).</summary>
    private long _watermark;
    private long _lastHid;
    private long _dataVersion;

    /// <summary>Committed states not folded yet.</summary>
    public int Count => _committed.Count;

    public bool IsEmpty => _committed.IsEmpty;

    /// <summary>States readers find here: the waiting ones and the folded ones kept for them.</summary>
    public int ReadableCount => _readable.Count;

    /// <summary>Brings the tables up to date with the history (after a crash, or another process's writes) and starts following.</summary>
    public void Open(SqliteConnection connection) => CatchUp(connection);

    /// <summary>The committed state of <paramref name="slot"/> when the table may be behind it (any thread).</summary>
    public bool TryGetCommitted(KvSlot slot, out KvHot state) => _readable.TryGetValue(slot, out state!);

    /// <summary>The newest state in the running transaction: staged, else committed; null when the table has it.</summary>
    public KvHot? Find(KvSlot slot) =>
        _stagedIndex.TryGetValue(slot, out var index) ? _staged[index].State
        : _committed.TryGetValue(slot, out var state) ? state
        : null;

    /// <summary>The key's newest state in the running transaction: waiting here, else as the tables hold it (null: they know nothing of it).</summary>
    public KvHot? Current(SqliteConnection c, KvSlot slot) => Find(slot) ?? Load(c, slot);

    /// <summary>Records the key's new state (<paramref name="entry"/> null: deleted) written by history row <paramref name="hid"/>.</summary>
    public void Stage(KvSlot slot, KvEntry? entry, long hid, long seq)
    {
        ref var index = ref CollectionsMarshal.GetValueRefOrAddDefault(_stagedIndex, slot, out var staged);
        var first = staged ? _staged[index].State.FirstUnfoldedHid
            : _committed.TryGetValue(slot, out var committed) ? committed.FirstUnfoldedHid
            : hid;
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
    /// Writes the states matching <paramref name="which"/> to the tables inside the running
    /// transaction, keeping them here (a later fold writes them again): for operations that read the
    /// tables themselves (listing, pattern deletes).
    /// </summary>
    public void Flush(SqliteConnection connection, Func<KvSlot, bool> which)
    {
        foreach (var (slot, state) in View())
        {
            if (which(slot))
            {
                WriteState(connection, slot, state);
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
        _readable.Clear();
        _committed.Clear();
    }

    public int Mark() => _staged.Count;

    public void RollBackTo(int mark)
    {
        if (_staged.Count <= mark)
        {
            return;
        }
        _staged.RemoveRange(mark, _staged.Count - mark);
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
    }

    public void Committed()
    {
        // A key's last state only: a hot key set many times in one group is published once (its history has every change).
        foreach (var index in _stagedIndex.Values)
        {
            var (slot, state) = _staged[index];
            _committed[slot] = state;
            _readable[slot] = state;
            _lastHid = Math.Max(_lastHid, state.LastHid);
        }
        RolledBack();
    }

    /// <summary>
    /// Folds chunks until both bounds hold again: one group can add far more than a chunk (a group of
    /// msets of 1,000 keys each), and memory must stay bounded by <see cref="HighWater"/> after every group.
    /// </summary>
    public void AfterGroup(SqliteConnection connection)
    {
        while (_committed.Count >= HighWater || _lastHid - _watermark >= MaxUnfoldedRows)
        {
            Fold(connection, ChunkSize);
        }
    }

    public void Idle(SqliteConnection connection)
    {
        if (!InSyncOutsideTransaction(connection))
        {
            CatchUp(connection);
        }
        else if (!_committed.IsEmpty)
        {
            Fold(connection, int.MaxValue);
        }
    }

    public void Closing(SqliteConnection connection) => Idle(connection);

    /// <summary>
    /// Folds up to <paramref name="max"/> states into the tables, those waiting longest first, and
    /// moves the watermark up to just below the oldest state left (or to the newest history row).
    /// </summary>
    private void Fold(SqliteConnection c, int max)
    {
        c.ExecuteNonQuery("BEGIN IMMEDIATE");
        if (!InSync(c))
        {
            c.ExecuteNonQuery("ROLLBACK");
            CatchUp(c);
            return;
        }
        KeyValuePair<KvSlot, KvHot>[] states;
        int count;
        long watermark;
        try
        {
            (states, count, watermark) = WriteOldest(c, max);
            c.ExecuteNonQuery("COMMIT");
        }
        catch
        {
            RollBackOwn(c);
            throw;
        }
        _watermark = watermark;
        for (var i = 0; i < count; i++)
        {
            _committed.TryRemove(states[i]); // readers still find it, folded, until ForgetFolded
        }
        if (_readable.Count > _committed.Count + HighWater)
        {
            ForgetFolded();
        }
    }

    /// <summary>Drops the folded states readers kept (the table has them); the waiting ones stay. Writer thread only.</summary>
    private void ForgetFolded()
    {
        foreach (var state in _readable)
        {
            if (!_committed.ContainsKey(state.Key))
            {
                _readable.TryRemove(state); // only if it is still that state (it is: states change on this thread)
            }
        }
    }

    /// <summary>Writes the <paramref name="max"/> states waiting longest; returns them (oldest first), how many were written and the new watermark.</summary>
    private (KeyValuePair<KvSlot, KvHot>[] States, int Count, long Watermark) WriteOldest(SqliteConnection c, int max)
    {
        var states = _committed.ToArray();
        var order = new long[states.Length];
        for (var i = 0; i < states.Length; i++)
        {
            order[i] = states[i].Value.FirstUnfoldedHid;
        }
        Array.Sort(order, states);
        var count = Math.Min(max, states.Length);
        for (var i = 0; i < count; i++)
        {
            WriteState(c, states[i].Key, states[i].Value);
        }
        var watermark = count < states.Length
            ? states[count].Value.FirstUnfoldedHid - 1
            : c.ScalarInt64("SELECT max(hid) FROM kv_history") ?? _watermark;
        SaveWatermark(c, watermark);
        return (states, count, watermark);
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
    private static KvHot? Load(SqliteConnection c, KvSlot slot)
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
