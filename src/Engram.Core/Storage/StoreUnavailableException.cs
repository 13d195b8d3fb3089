namespace Engram.Core.Storage;

/// <summary>
/// The store cannot be reached now (the database is stopped, refuses or drops connections, is shutting down, is out
/// of connections or did not answer in time): nothing the request did is at fault, and the same request may succeed
/// once the database is back. Writes answer 503 with Retry-After; searches answer from the in-memory indexes.
/// </summary>
public sealed class StoreUnavailableException(string message, string database, Exception inner) : StoreException(message, inner)
{
    /// <summary>What the database is, without a password (<c>postgres host:port/database</c>), for problem bodies and logs.</summary>
    public string Database { get; } = database;
}
