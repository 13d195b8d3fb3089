namespace Engram.Core.Storage;

/// <summary>
/// Something a store found wrong and recovered from on its own (a key-value journal of another database moved aside, damage
/// in the journal, leftover journaled writes that could not be applied): the store goes on, but an operator has to look.
/// The server logs each one (category Engram.Storage) and reports them in <c>/health</c> (check <c>store_notices</c>,
/// <c>storage.notices</c>) and <c>engram_store_notices</c>; <c>engram doctor</c> prints them; other commands print them on stderr.
/// </summary>
/// <param name="Time">When the store noticed it.</param>
/// <param name="Kind">What it is: one of the constants below.</param>
/// <param name="Message">What happened, where the files are and what was (or was not) applied.</param>
public sealed record StoreNotice(DateTimeOffset Time, string Kind, string Message)
{
    /// <summary>The key-value journal beside the database belonged to another database: moved aside, not applied.</summary>
    public const string KvJournalForeign = "kv_journal_foreign";

    /// <summary>The key-value journal was damaged: a copy is kept beside it; acknowledged writes may be lost.</summary>
    public const string KvJournalDamaged = "kv_journal_damaged";

    /// <summary>Acknowledged writes left in the key-value journal could not be applied at the open: key-value writes fail until they are.</summary>
    public const string KvJournalUnapplied = "kv_journal_unapplied";

    /// <summary>
    /// Called with each notice as a store of this process records it: the command line prints it on stderr (the server
    /// logs a store's notices itself). Null: nobody listens.
    /// </summary>
    public static Action<StoreNotice>? Listener { get; set; }

    /// <summary>What an operator does about a notice of <paramref name="kind"/> (docs/RUNBOOK.md has the whole procedure).</summary>
    public static string FixFor(string kind) => kind switch
    {
        KvJournalForeign => "the moved file holds another database's acknowledged writes: put it back beside that database (as engram.db-kvjournal, "
            + "no server running there) to apply them, or delete it if that database is gone; docs/RUNBOOK.md",
        KvJournalDamaged => "check the disk (dmesg, SMART); the writes named are lost: restore them from the clients or a backup if they matter; "
            + "delete the .damaged- copy once inspected; docs/RUNBOOK.md",
        KvJournalUnapplied => "see the server log for why the apply failed (disk full, permissions, a read-only file system) and fix it: the writer "
            + "applies the writes then; restart once they are applied to journal relaxed SETs again; docs/RUNBOOK.md",
        _ => "see the server log; docs/RUNBOOK.md",
    };
}

/// <summary>A store that records <see cref="StoreNotice"/>s (SQLite's; PostgreSQL's has none).</summary>
public interface IStoreNotices
{
    /// <summary>The notices since the store opened, oldest first; at most <see cref="StoreNoticeList.Capacity"/> are kept.</summary>
    IReadOnlyList<StoreNotice> OpenNotices { get; }

    /// <summary>How many notices the store recorded since it opened, the ones not kept included.</summary>
    long NoticeCount { get; }
}

/// <summary>A store's notices: the first <see cref="Capacity"/> kept, every one counted; thread-safe.</summary>
public sealed class StoreNoticeList
{
    /// <summary>How many notices are kept (the first ones: they say what went wrong first; the count goes on).</summary>
    public const int Capacity = 16;

    private readonly List<StoreNotice> _kept = [];
    private StoreNotice[] _snapshot = [];
    private long _count;

    public IReadOnlyList<StoreNotice> Kept => Volatile.Read(ref _snapshot);

    public long Count => Interlocked.Read(ref _count);

    /// <summary>Records <paramref name="notice"/> and passes it to <see cref="StoreNotice.Listener"/>.</summary>
    public void Add(StoreNotice notice)
    {
        lock (_kept)
        {
            Interlocked.Increment(ref _count);
            if (_kept.Count < Capacity)
            {
                _kept.Add(notice);
                Volatile.Write(ref _snapshot, [.. _kept]);
            }
        }
        StoreNotice.Listener?.Invoke(notice);
    }
}
