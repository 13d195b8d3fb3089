using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Server.Http;

/// <summary>
/// Tells a store that cannot serve now (busy, locked, out of disk, an I/O error: a retry may succeed,
/// so 503) from a statement the store refused (too many terms, a value too big: a server bug or a
/// missing input limit, so 500). Both are logged; neither shows the store's message to the caller.
/// </summary>
internal static class StoreFailures
{
    public static bool IsUnavailable(StoreException exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            if (e is SqliteException sqlite)
            {
                return (sqlite.ResultCode & 0xff) is
                    5 or 6 or 7 or 8 or 10 or 11 or 13 or 14 or 15 or 26; // BUSY LOCKED NOMEM READONLY IOERR CORRUPT FULL CANTOPEN PROTOCOL NOTADB
            }
            if (e is IOException)
            {
                return true;
            }
        }
        // A StoreException of the store's own (a data folder it cannot create, a sync that failed) is about the store, not the request.
        return true;
    }
}
