namespace Engram.Core.Storage;

/// <summary>
/// What a store that acknowledges relaxed SETs through a journal (SQLite's key-value journal) reports about it, for the
/// metrics: how many SETs took that way, how many of them the database does not hold yet, and the memory of the key
/// filter that lets new keys take that way too.
/// </summary>
public interface IKvJournalFigures
{
    /// <summary>SETs acknowledged through the journal since the store opened.</summary>
    long JournaledSets { get; }

    /// <summary>Increments (INCR, INCRBY, DECR…) acknowledged through the journal since the store opened.</summary>
    long JournaledIncrements { get; }

    /// <summary>Deletes (DEL, UNLINK, GETDEL, an EXPIRE in the past; a record per live key) acknowledged through the journal since the store opened.</summary>
    long JournaledDeletes { get; }

    /// <summary>Expiry changes (EXPIRE and its forms, PERSIST, GETEX with an expiry) acknowledged through the journal since the store opened.</summary>
    long JournaledExpiryChanges { get; }

    /// <summary>Writes acknowledged through the journal and not yet applied to the database's tables.</summary>
    int JournalPending { get; }

    /// <summary>Bytes held by the filter of the keys the store holds (0 while it is being built).</summary>
    long KeyFilterBytes { get; }
}
