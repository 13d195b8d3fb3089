using Engram.Core.Storage.Postgres;
using Engram.Core.Storage.Sqlite;

namespace Engram.Core.Storage;

/// <summary>
/// Picks the backend from where the store is: a <c>postgres://</c> (or <c>postgresql://</c>) URL opens
/// the PostgreSQL store, anything else is a data folder for the embedded SQLite store.
/// </summary>
public static class StoreFactory
{
    /// <summary>Whether <paramref name="location"/> names a PostgreSQL database rather than a data folder.</summary>
    public static bool IsPostgres(string? location) => PostgresUrl.IsPostgres(location);

    public static IMemoryStore Open(string location, TimeProvider? clock = null, int maxReaders = 0) =>
        IsPostgres(location) ? PostgresMemoryStore.Open(location, clock) : SqliteMemoryStore.Open(location, clock, maxReaders);

    /// <summary>What logs may show of <paramref name="location"/>: a folder as is, a URL without its password.</summary>
    public static string Describe(string location) => IsPostgres(location) ? PostgresUrl.Redact(location) : location;
}
