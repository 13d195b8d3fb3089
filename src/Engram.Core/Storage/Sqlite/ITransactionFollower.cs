namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// In-memory state that follows the writer's transactions (the key-value write-behind,
/// <see cref="SqliteKvWriteBehind"/>). Work items stage changes to it while they run; the writer
/// tells it where each item starts, which items or groups were rolled back and when a group
/// committed, so staged changes become visible exactly when their SQL does and vanish with it.
/// Every method runs on the writer's thread.
/// </summary>
internal interface ITransactionFollower
{
    /// <summary>
    /// Called right after <c>BEGIN IMMEDIATE</c>, before any item runs. False when another
    /// connection committed since this follower last looked: the writer then rolls back, calls
    /// <see cref="CatchUp"/> and begins again.
    /// </summary>
    bool InSync(SqliteConnection connection);

    /// <summary>Brings the follower up to date with other connections' commits, in a transaction of its own.</summary>
    void CatchUp(SqliteConnection connection);

    /// <summary>A position in the staged changes, taken before an item runs.</summary>
    int Mark();

    /// <summary>The item that started at <paramref name="mark"/> failed: its staged changes go.</summary>
    void RollBackTo(int mark);

    /// <summary>The transaction rolled back: every staged change goes.</summary>
    void RolledBack();

    /// <summary>The transaction committed: staged changes become visible to readers.</summary>
    void Committed();

    /// <summary>After a group was acknowledged (no transaction open): room for background work in transactions of its own.</summary>
    void AfterGroup(SqliteConnection connection);

    /// <summary>The writer has had nothing to do for a while (no transaction open).</summary>
    void Idle(SqliteConnection connection);

    /// <summary>The writer is stopping (no transaction open): the last chance to write.</summary>
    void Closing(SqliteConnection connection);
}
