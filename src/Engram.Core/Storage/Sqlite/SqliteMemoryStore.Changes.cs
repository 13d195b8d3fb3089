using Engram.Core.KeyValue;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The change log and the sequence its entries are numbered from.
/// <para>
/// Memories and the graph append a <c>changelog</c> row per change; its <c>AUTOINCREMENT</c> key is the change's seq.
/// A key-value change is not written there (from schema 14): its history row already holds everything the log
/// would (tenant, key, event, time), so its history id <em>is</em> its seq, taken from the same sequence
/// (<c>sqlite_sequence</c>, which <c>AUTOINCREMENT</c> also reads), and the readers below merge the two tables in seq order.
/// A SET then inserts one row instead of two (bench/README.md, `resp`), and key-value churn no longer grows the change
/// log for ever: its entries are pruned with the history (<c>Engram:KeyValue:HistoryRetentionDays</c>).
/// Key-value changes made before that migration stay in <c>changelog</c>; the history rows above
/// <c>store_meta.kv_changes_in_history_after</c> are the newer ones.
/// </para>
/// </summary>
public sealed partial class SqliteMemoryStore
{
    /// <summary>store_meta key of the seq after which key-value changes are read from kv_history (schema 14).</summary>
    internal const string KvChangesInHistoryAfterKey = "kv_changes_in_history_after";

    /// <summary>
    /// The newest seq handed out: the sequence (which key-value writes advance without a changelog row), or the log's own
    /// newest row when something wrote one with an explicit seq.
    /// </summary>
    internal const string NewestSeqSql =
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changelog'), 0), coalesce((SELECT max(seq) FROM changelog), 0))";

    /// <summary>A key-value change as the change log reports it: its history row, deletions and expiries as deletes.</summary>
    private const string KvChangesSql =
        $"SELECT hid AS seq, tenant, '{ChangeRecord.KeyValueEntity}' AS entity, key AS entity_id, " +
        $"CASE WHEN event IN ('{KvEvents.Deleted}', '{KvEvents.Expired}') THEN '{ChangeRecord.Delete}' ELSE '{ChangeRecord.Upsert}' END AS op, at FROM kv_history";

    /// <summary>Seqs reserved by the running work item (<see cref="ReserveKvSeqs"/>): the next to hand out, and the end.</summary>
    private long _reservedSeq;
    private long _reservedEnd;

    public Task<long> GetLastSeqAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarInt64(NewestSeqSql) ?? 0, ct).AsTask();

    public Task<IReadOnlyList<ChangeRecord>> ReadChangesAsync(long afterSeq, int max, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<ChangeRecord>>(c =>
        {
            var changes = new List<ChangeRecord>();
            using var statement = _kvChangesInHistoryAfter is { } after
                ? c.Prepare(
                    "SELECT * FROM (SELECT seq, tenant, entity, entity_id, op, at FROM changelog WHERE seq > ?1 ORDER BY seq LIMIT ?2) " +
                    $"UNION ALL SELECT * FROM ({KvChangesSql} WHERE hid > max(?1, ?3) ORDER BY hid LIMIT ?2) ORDER BY seq LIMIT ?2")
                : c.Prepare("SELECT seq, tenant, entity, entity_id, op, at FROM changelog WHERE seq > ?1 ORDER BY seq LIMIT ?2");
            statement.BindAll(_kvChangesInHistoryAfter is { } a ? [afterSeq, max, a] : [afterSeq, max]);
            ReadChanges(statement, changes);
            return changes;
        }, ct).AsTask();

    public Task<ChangePage> ReadChangesAsync(long afterSeq, int max, string entity, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            // The newest seq first: everything up to it is committed (one writer at a time assigns
            // seqs in commit order), so a page that stops short of max has read the log up to it.
            var newest = c.ScalarInt64(NewestSeqSql) ?? 0;
            var changes = new List<ChangeRecord>();
            const string Logged = "SELECT seq, tenant, entity, entity_id, op, at FROM changelog WHERE seq > ?1 AND seq <= ?2 AND entity = ?3 ORDER BY seq LIMIT ?4";
            using var statement = entity == ChangeRecord.KeyValueEntity && _kvChangesInHistoryAfter is not null
                ? c.Prepare($"SELECT * FROM ({Logged}) UNION ALL SELECT * FROM ({KvChangesSql} WHERE hid > max(?1, ?5) AND hid <= ?2 ORDER BY hid LIMIT ?4) ORDER BY seq LIMIT ?4")
                : c.Prepare(Logged);
            statement.BindAll(entity == ChangeRecord.KeyValueEntity && _kvChangesInHistoryAfter is { } after
                ? [afterSeq, newest, entity, max, after]
                : [afterSeq, newest, entity, max]);
            ReadChanges(statement, changes);
            return new ChangePage(changes, changes.Count == max ? changes[^1].Seq : Math.Max(afterSeq, newest));
        }, ct).AsTask();

    private static void ReadChanges(SqliteStatement statement, List<ChangeRecord> changes)
    {
        while (statement.Step())
        {
            changes.Add(ReadChange(statement));
        }
    }

    /// <summary>
    /// The seq of a key-value change, which from schema 14 is also the id of its history row: from the block
    /// <see cref="ReserveKvSeqs"/> set aside, else the sequence. A file of an older schema (tests write such files with
    /// today's code) still gets a changelog row.
    /// </summary>
    private long NextKvSeq(SqliteConnection c, string tenant, string storedKey, string op, long now)
    {
        if (_kvChangesInHistoryAfter is null)
        {
            return AppendKvChange(c, tenant, storedKey, op, now);
        }
        if (_reservedSeq < _reservedEnd)
        {
            return _reservedSeq++;
        }
        return TakeSeqs(c, 1);
    }

    /// <summary>
    /// Sets <paramref name="count"/> seqs aside for the key-value changes of the running work item (one statement
    /// instead of one per change); those it does not use are gaps, which readers of the log never rely on. Dispose the
    /// result when the item ends, whether it succeeded or not.
    /// </summary>
    private ReservedSeqs ReserveKvSeqs(SqliteConnection c, int count)
    {
        if (_kvChangesInHistoryAfter is not null && count > 1)
        {
            _reservedSeq = TakeSeqs(c, count);
            _reservedEnd = _reservedSeq + count;
        }
        return new ReservedSeqs(this);
    }

    /// <summary>Advances the sequence by <paramref name="count"/> inside the running transaction; returns the first seq taken.</summary>
    private static long TakeSeqs(SqliteConnection c, int count)
    {
        // An UPDATE and a SELECT, not UPDATE … RETURNING: 1.06 µs against 3.66, and a change-log row was 1.56 (ChangeSeqBenchmarks).
        long? last = c.ExecuteNonQuery("UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = 'changelog'", count) == 1
            ? c.ScalarInt64("SELECT seq FROM sqlite_sequence WHERE name = 'changelog'")
            : null;
        if (last is null)
        {
            // The row is made by the migration; should it be missing, it starts above every seq and history id there is.
            last = c.ScalarInt64("SELECT max(coalesce((SELECT max(seq) FROM changelog), 0), coalesce((SELECT max(hid) FROM kv_history), 0))")!.Value + count;
            c.ExecuteNonQuery("INSERT INTO sqlite_sequence(name, seq) VALUES ('changelog', ?1)", last);
        }
        return last.Value - count + 1;
    }

    private readonly struct ReservedSeqs(SqliteMemoryStore store) : IDisposable
    {
        public void Dispose() => store._reservedSeq = store._reservedEnd = 0;
    }
}
