using SQLitePCL;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The SQLite side of backups: an online copy with SQLite's backup API, and the facts a manifest records
/// and a verification checks (schema version, last change-log sequence, row counts, integrity).
/// </summary>
/// <remarks>
/// The copy holds one read transaction on its own connection for its whole length and steps
/// <see cref="PagesPerStep"/> pages at a time. In WAL mode a reader never blocks the writer, so writes go on
/// while the copy runs; the held transaction pins the snapshot, so the copy is the database as of its first
/// step (SQLite restarts a backup whose source changed between steps only when no read transaction spans
/// them). The cost of a long copy is that checkpoints cannot pass the snapshot: the WAL grows meanwhile and
/// is folded back at the next checkpoint after the copy ends.
/// </remarks>
public static class SqliteBackup
{
    /// <summary>Pages copied per step (4 MB with 4 KB pages): the unit of progress and cancellation.</summary>
    public const int PagesPerStep = 1024;

    /// <summary>The tables a manifest counts, by the name it uses.</summary>
    public static readonly IReadOnlyList<(string Name, string Table)> CountedTables =
    [
        ("memories", "memories"),
        ("memory_history", "memory_history"),
        ("kv_keys", "kv_entries"),
        ("kv_history", "kv_history"),
        ("graph_entities", "graph_entities"),
        ("graph_observations", "graph_observations"),
        ("graph_relations", "graph_relations"),
        ("graph_history", "graph_history"),
        ("api_keys", "api_keys"),
        ("changelog", "changelog"),
    ];

    /// <summary>
    /// Copies the live database at <paramref name="sourcePath"/> into the new file <paramref name="destinationPath"/>,
    /// (absent, or empty: created beforehand with the permissions wanted), then makes the copy self-contained: key-value states still waiting in a writer's memory are folded from their
    /// history rows into the copy's tables (what any opener does), and the copy is left in rollback-journal form with no WAL.
    /// </summary>
    public static void Copy(string sourcePath, string destinationPath, IProgress<(long Done, long Total)>? progress = null, CancellationToken ct = default)
    {
        if (File.Exists(destinationPath) && new FileInfo(destinationPath).Length > 0)
        {
            throw new IOException($"'{destinationPath}' exists already");
        }
        using (var source = SqliteConnection.Open(sourcePath, readOnly: false, create: false))
        using (var destination = SqliteConnection.OpenPlain(destinationPath))
        {
            destination.Execute("PRAGMA journal_mode=OFF");
            destination.Execute("PRAGMA synchronous=OFF");
            // One read transaction across every step: the copy is one snapshot however long it takes (see remarks).
            source.Execute("BEGIN");
            try
            {
                source.ScalarInt64("SELECT count(*) FROM sqlite_schema");
                CopyPages(source, destination, progress, ct);
            }
            finally
            {
                source.Execute("COMMIT");
            }
        }
        using var copy = SqliteConnection.Open(destinationPath, create: false);
        if (SqliteSchema.CurrentVersion(copy) == SqliteSchema.LatestVersion)
        {
            new SqliteKvWriteBehind().Open(copy);
        }
        GiveOwnJournalIdentity(copy);
        copy.Execute("PRAGMA wal_checkpoint(TRUNCATE)");
        copy.Execute("PRAGMA journal_mode=DELETE");
    }

    /// <summary>
    /// A copy is a database of its own: it gets a key-value journal id of its own (store_meta <c>kv_journal_id</c>). With the
    /// source's id, a copy put over the source's crashed database by hand (not by <c>engram restore</c>, which deletes the
    /// journal) had the source's newer journaled writes replayed onto its older tables; with its own, that journal is
    /// another database's: moved aside and reported (<see cref="StoreNotice.KvJournalForeign"/>). The records of the
    /// source's journal a copy needs are in its tables already (<see cref="SqliteMemoryStore.ApplyOrphanedKvJournal"/>, or
    /// the live store applied them).
    /// </summary>
    private static void GiveOwnJournalIdentity(SqliteConnection copy)
    {
        if (copy.ScalarInt64("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'store_meta'") > 0)
        {
            copy.ExecuteNonQuery("INSERT INTO store_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                SqliteKvJournal.IdentityKey, SqliteKvJournal.NewIdentity());
        }
    }

    private static void CopyPages(SqliteConnection source, SqliteConnection destination, IProgress<(long Done, long Total)>? progress, CancellationToken ct)
    {
        var backup = raw.sqlite3_backup_init(destination.Handle, "main", source.Handle, "main")
            ?? throw new SqliteException(raw.sqlite3_errcode(destination.Handle), $"cannot start the backup: {destination.ErrorMessage}");
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var rc = raw.sqlite3_backup_step(backup, PagesPerStep);
                long total = raw.sqlite3_backup_pagecount(backup);
                progress?.Report((total - raw.sqlite3_backup_remaining(backup), total));
                if (rc == raw.SQLITE_DONE)
                {
                    return;
                }
                if (rc is raw.SQLITE_BUSY or raw.SQLITE_LOCKED)
                {
                    Thread.Sleep(20);
                    continue;
                }
                if (rc != raw.SQLITE_OK)
                {
                    throw new SqliteException(rc, $"the backup failed: {raw.sqlite3_errstr(rc).utf8_to_string()}");
                }
            }
        }
        finally
        {
            raw.sqlite3_backup_finish(backup);
        }
    }

    /// <summary>What a database holds, as a manifest records it.</summary>
    public static DatabaseFacts ReadFacts(string path)
    {
        using var connection = SqliteConnection.Open(path, readOnly: true, create: false);
        return ReadFacts(connection);
    }

    internal static DatabaseFacts ReadFacts(SqliteConnection connection)
    {
        var schema = SqliteSchema.CurrentVersion(connection);
        var lastSeq = connection.ScalarInt64(SqliteMemoryStore.NewestSeqSql) ?? 0;
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, table) in CountedTables)
        {
            if (connection.ScalarInt64("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", table) > 0)
            {
                counts[name] = connection.ScalarInt64($"SELECT count(*) FROM {table}") ?? 0;
            }
        }
        var storeId = connection.ScalarText("SELECT value FROM store_meta WHERE key = 'store_id'") ?? "";
        return new DatabaseFacts(schema, lastSeq, storeId, counts);
    }

    /// <summary>SQLite's integrity check of the file at <paramref name="path"/>: "ok", or the problems it found (at most 20).</summary>
    public static IReadOnlyList<string> IntegrityCheck(string path)
    {
        using var connection = SqliteConnection.Open(path, readOnly: true, create: false);
        using var check = connection.Prepare("PRAGMA integrity_check(20)");
        var lines = new List<string>();
        while (check.Step())
        {
            lines.Add(check.GetText(0));
        }
        return lines;
    }
}

/// <summary>What a database holds: schema version, last change-log sequence, the store's id and row counts by kind.</summary>
public sealed record DatabaseFacts(int SchemaVersion, long LastSeq, string StoreId, IReadOnlyDictionary<string, long> Counts);
