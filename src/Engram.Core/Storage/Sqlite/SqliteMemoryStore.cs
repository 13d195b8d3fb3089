using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode. One writer (see <see cref="SqliteWriter"/>)
/// and a pool of readers per process; other processes on the same file (the CLI next to a running
/// server) wait on SQLite's lock through the busy timeout rather than failing.
/// </summary>
public sealed partial class SqliteMemoryStore : IMemoryStore, IKvJournalFigures, IStoreNotices
{
    public const string FileName = "engram.db";

    /// <summary>The key-value journal beside <see cref="FileName"/> (its files set aside take a suffix: <c>.foreign-…</c>, <c>.damaged-…</c>).</summary>
    public const string KvJournalFileName = FileName + SqliteKvJournal.Suffix;

    private readonly SqliteConnection _writeConnection;
    private readonly SqliteWriter _writer;
    private readonly SqliteKvWriteBehind _kvHot;
    private readonly SqliteConnectionPool _readers;
    private readonly TimeProvider _clock;
    private readonly CheapClock _expiryClock; // expiry checks of reads from memory
    private bool _disposed;
    /// <summary>Key-value changes after this seq are read from kv_history, not changelog; null in a file older than schema 14 (<see cref="NextKvSeq"/>).</summary>
    private readonly long? _kvChangesInHistoryAfter;
    /// <summary>Key-value history rows of the running write item, inserted together at its end (writer thread only).</summary>
    private readonly SqliteKvHistoryRows _kvRows = new();
    /// <summary>Relaxed SETs acknowledged before the writer applies them; null when another process owns the file.</summary>
    private readonly SqliteKvJournal? _journal;

    private SqliteMemoryStore(string path, SqliteConnection writeConnection, SqliteKvWriteBehind kvHot, SqliteKvJournal? journal, TimeProvider clock,
        int maxReaders, long? kvChangesAfter)
    {
        _kvChangesInHistoryAfter = kvChangesAfter;
        DatabasePath = path;
        _writeConnection = writeConnection;
        _clock = clock;
        _expiryClock = new CheapClock(clock);
        _kvHot = kvHot;
        _writer = new SqliteWriter(writeConnection, kvHot);
        _readers = new SqliteConnectionPool(path, maxReaders);
        // The key filter's scan of the tables runs on a reader, off the writer's thread (Task.Run: a free reader slot
        // would otherwise run it on the calling thread).
        kvHot.ScanKeysOnReader = () => Task.Run(() => _readers.ReadAsync(SqliteKvWriteBehind.ScanKeyHashes).AsTask());
        if (journal is not null)
        {
            _journal = journal;
            journal.Apply = ApplyJournal;
            journal.Nudge = _writer.Nudge;
            _writer.Gate = journal;
        }
    }

    public string Kind => "sqlite";

    /// <summary>
    /// The store's in-memory backlogs (for <c>GET /v1/admin/memory</c>): work items waiting for the single writer
    /// (bounded by <see cref="SqliteWriter.DefaultQueueCapacity"/>; callers wait when it is full) and key-value states
    /// not folded into <c>kv_entries</c> yet (the writer starts folding once <see cref="SqliteKvWriteBehind.HighWater"/> are waiting).
    /// </summary>
    public (int Writes, int KvStates) Backlog => (_writer.QueueLength, _kvHot.Count);

    /// <summary>The bound of <see cref="Backlog"/>'s key-value states after any group (<see cref="SqliteKvWriteBehind.MaxWaiting"/>).</summary>
    public int KvStatesBound => _kvHot.MaxWaiting;

    /// <summary>The estimated bytes of the key-value states waiting to be folded.</summary>
    public long KvWaitingBytes => _kvHot.WaitingBytes;

    public string StoreId { get; private init; } = "";

    private readonly StoreNoticeList _notices = new();

    /// <summary>
    /// What the open found wrong and recovered from (a key-value journal of another database set aside, damage in it, leftover
    /// writes it could not apply): the server logs these as errors and reports them in /health and engram_store_notices,
    /// the command line prints them (<see cref="StoreNotice.Listener"/>). The store itself has no logger. Bounded
    /// (<see cref="StoreNoticeList.Capacity"/>).
    /// </summary>
    public IReadOnlyList<StoreNotice> OpenNotices => _notices.Kept;

    public long NoticeCount => _notices.Count;

    private void Notice(string kind, string message) => _notices.Add(new StoreNotice(_clock.GetUtcNow(), kind, message));

    public string DatabasePath { get; }

    /// <summary>Opens (creating if needed) <c>engram.db</c> in <paramref name="dataDirectory"/> and migrates it.</summary>
    public static SqliteMemoryStore Open(string dataDirectory, TimeProvider? clock = null, int maxReaders = 0) =>
        Open(dataDirectory, clock, maxReaders, schemaVersion: null);

    /// <summary>
    /// Opens the store migrated only up to <paramref name="schemaVersion"/>: tests write through the
    /// real store into a file of an earlier schema, as the release that stopped there would have, and
    /// then let a full open migrate it. Writes and reads work from version 7 on, except the metadata
    /// filters (they read memories.metadata_jsonb, version 8).
    /// </summary>
    internal static SqliteMemoryStore OpenAtSchemaVersion(string dataDirectory, int schemaVersion, TimeProvider? clock = null) =>
        Open(dataDirectory, clock, maxReaders: 0, schemaVersion);

    /// <summary>Opens the store with a write-behind of its own: tests make its folds come after a few keys instead of thousands.</summary>
    internal static SqliteMemoryStore OpenWithWriteBehind(string dataDirectory, SqliteKvWriteBehind kvHot, TimeProvider? clock = null) =>
        Open(dataDirectory, clock, maxReaders: 0, schemaVersion: null, kvHot);

    private static SqliteMemoryStore Open(string dataDirectory, TimeProvider? clock, int maxReaders, int? schemaVersion, SqliteKvWriteBehind? kvHot = null)
    {
        clock ??= TimeProvider.System;
        try
        {
            Directory.CreateDirectory(dataDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StoreException($"cannot create the data folder '{dataDirectory}': {ex.Message}", ex);
        }
        var path = Path.Combine(Path.GetFullPath(dataDirectory), FileName);
        // A journal beside a database this open creates is not its own (a store reset by deleting its database after a crash).
        var newDatabase = !File.Exists(path);
        var connection = SqliteConnection.Open(path);
        kvHot ??= new SqliteKvWriteBehind();
        try
        {
            SqliteSchema.Migrate(connection, clock.GetUtcNow().ToUnixTimeMilliseconds(), schemaVersion);
            // Key-value writes a crashed process left unfolded (or another process still holds) reach kv_entries.
            kvHot.Open(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        var storeId = connection.ScalarText("SELECT value FROM store_meta WHERE key = 'store_id'") ?? "";
        var kvChangesAfter = connection.ScalarInt64($"SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = '{KvChangesInHistoryAfterKey}'");
        SqliteKvJournal? journal = null;
        long applied = 0;
        byte[]? identity = null;
        try
        {
            // A file older than schema 14 (tests write such files) gives a SET's history row its id at the insert: no journal.
            if (kvChangesAfter is not null)
            {
                applied = connection.ScalarInt64($"SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = '{SqliteKvJournal.AppliedKey}'") ?? 0;
                identity = SqliteKvJournal.ParseIdentity(connection.ScalarText($"SELECT value FROM store_meta WHERE key = '{SqliteKvJournal.IdentityKey}'"));
                journal = SqliteKvJournal.TryOpen(path, kvHot, applied, identity, newDatabase);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            connection.Dispose();
            throw new StoreException($"cannot read the key-value journal beside '{path}': {ex.Message}", ex);
        }
        var store = new SqliteMemoryStore(path, connection, kvHot, journal, clock, maxReaders > 0 ? maxReaders : Math.Max(4, Environment.ProcessorCount * 2),
            kvChangesAfter)
        {
            StoreId = storeId,
            HasVectorTable = schemaVersion is not { } stopped || stopped >= VectorTableVersion,
        };
        if (store._journal is { } opened)
        {
            foreach (var (kind, message) in opened.Notices)
            {
                store.Notice(kind, message);
            }
            if (opened.Pending > 0)
            {
                // SETs acknowledged before a crash and not applied then: in the tables before anyone reads. Any group applies
                // them first; this item says it touches no key state, so a failure to apply them does not fail it (nor the
                // open, on every start): they wait, the writer tries again, and key-value writes fail meanwhile.
                store._writer.WriteAsync(static _ => 0, WriteDurability.Relaxed, touchesKv: false).GetAwaiter().GetResult();
            }
            if (opened.Pending > 0)
            {
                store._kvLeftoverWaits = true;
                store.Notice(StoreNotice.KvJournalUnapplied, $"The key-value journal beside '{path}' holds {opened.Pending} acknowledged write(s) that "
                    + "could not be applied; key-value writes fail until they are (the writer tries again), and relaxed SETs are not journaled "
                    + "until the next start.");
                return store;
            }
            if (identity is null)
            {
                // Stored after the leftover is applied, in a transaction of its own: a crash before this leaves a database
                // without an id, beside a file (of the previous release's format) whose records are all applied.
                identity = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
                var text = Convert.ToHexStringLower(identity);
                store._writer.WriteAsync(c => c.ExecuteNonQuery(
                    "INSERT INTO store_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    SqliteKvJournal.IdentityKey, text), WriteDurability.Full).GetAwaiter().GetResult();
            }
            opened.Start(identity, applied);
        }
        return store;
    }

    /// <summary>
    /// Applies the key-value journal a killed process left beside <paramref name="databasePath"/> (engram.db of a store), when
    /// no process owns it, by opening the store once: before something reads the database file itself (a backup made by
    /// the CLI), which would otherwise miss the relaxed SETs acknowledged from it. A running server owns its journal and
    /// applies it itself first.
    /// </summary>
    public static void ApplyOrphanedKvJournal(string databasePath)
    {
        if (Path.GetFileName(databasePath) == FileName && SqliteKvJournal.IsOrphaned(databasePath))
        {
            Open(Path.GetDirectoryName(databasePath)!).DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    public long SizeBytes
    {
        get
        {
            long total = 0;
            foreach (var suffix in (ReadOnlySpan<string>)["", "-wal"])
            {
                var file = new FileInfo(DatabasePath + suffix);
                if (file.Exists)
                {
                    total += file.Length;
                }
            }
            return total;
        }
    }

    public Task CheckAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarInt64("SELECT 1"), ct).AsTask();

    /// <summary>Runs SQLite's integrity check; "ok" when the file is sound.</summary>
    public Task<string> IntegrityCheckAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarText("PRAGMA integrity_check") ?? "no answer", ct).AsTask();

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (_journal is not null)
        {
            // Journaled SETs reach the tables before the writer stops; SETs from now on queue behind them.
            _journal.StopAccepting();
            await ApplyKvJournalAsync().ConfigureAwait(false);
        }
        // Drain queued writes first: everything a caller was told is pending still commits.
        await _writer.DisposeAsync().ConfigureAwait(false);
        _journal?.Dispose();
        _readers.Dispose();
        try
        {
            // Fold the WAL back into the main file so a closed store is one self-contained file.
            _writeConnection.Execute("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        catch (SqliteException)
        {
            // Another process is reading; the WAL stays and is still consistent.
        }
        _writeConnection.Dispose();
    }

    /// <summary>
    /// A write of something other than key-value state (memories, the graph, API keys, jobs): journaled SETs go on while
    /// its group runs, where a group that touches key states holds them back (<see cref="IWriterGate"/>).
    /// </summary>
    private Task<T> WriteApartFromKvAsync<T>(Func<SqliteConnection, T> write, CancellationToken ct) =>
        _writer.WriteAsync(write, WriteDurability.Full, touchesKv: false, ct);

    /// <inheritdoc cref="WriteApartFromKvAsync{T}(Func{SqliteConnection, T}, CancellationToken)"/>
    private Task<T> WriteApartFromKvAsync<T>(Func<SqliteConnection, T> write, WriteDurability durability, CancellationToken ct) =>
        _writer.WriteAsync(write, durability, touchesKv: false, ct);

    private long NowMs => _clock.GetUtcNow().ToUnixTimeMilliseconds();
}
