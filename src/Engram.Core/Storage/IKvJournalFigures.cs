namespace Engram.Core.Storage;

/// <summary>
/// What a store that acknowledges relaxed SETs through a journal (SQLite's key-value journal) reports about it, for the
/// metrics: how many SETs took that way, and how many of them the database does not hold yet.
/// </summary>
public interface IKvJournalFigures
{
    /// <summary>SETs acknowledged through the journal since the store opened.</summary>
    long JournaledSets { get; }

    /// <summary>SETs acknowledged through the journal and not yet applied to the database's tables.</summary>
    int JournalPending { get; }
}
