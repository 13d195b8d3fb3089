using Engram.Core.Storage.Sqlite;
using Npgsql;

namespace Engram.Core.Storage;

/// <summary>
/// Tells a store that cannot serve now (a retry may succeed: 503) from a statement the store refused (a server bug
/// or a missing input limit: 500). One place for both backends, used by the HTTP and MCP answers, by search (which
/// serves from its indexes while the store is away) and by the background jobs (which back off).
/// </summary>
public static class StoreFailure
{
    /// <summary>Whether <paramref name="exception"/> (or an exception inside it) says the store is away or busy, not that the request was wrong.</summary>
    public static bool IsUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case StoreUnavailableException:
                    return true;
                case SqliteException sqlite:
                    return (sqlite.ResultCode & 0xff) is
                        5 or 6 or 7 or 8 or 10 or 11 or 13 or 14 or 15 or 26; // BUSY LOCKED NOMEM READONLY IOERR CORRUPT FULL CANTOPEN PROTOCOL NOTADB
                case PostgresException postgres:
                    return IsUnavailable(postgres.SqlState);
                case NpgsqlException npgsql when npgsql.IsTransient:
                    return true;
                case IOException or System.Net.Sockets.SocketException or TimeoutException:
                    return true;
            }
        }
        // A StoreException of the store's own (a data folder it cannot create, a sync that failed) is about the store, not the request.
        return exception is StoreException && !HasPostgresCause(exception);
    }

    /// <summary>
    /// SQLSTATEs that say the database cannot serve now: class 08 (connection), 53 (insufficient resources: too many
    /// connections, out of memory or disk), 57P01..57P03 (an administrator's shutdown, a crash, cannot connect now) and
    /// 57014 (a statement timeout or a cancel). 40001/40P01 (serialisation, deadlock) are retried inside the store and
    /// count here only when the retries ran out. Everything else (constraint violations, a statement PostgreSQL refused)
    /// is about the request or the code.
    /// </summary>
    public static bool IsUnavailable(string? sqlState) => sqlState is not null && (
        sqlState.StartsWith("08", StringComparison.Ordinal) ||
        sqlState.StartsWith("53", StringComparison.Ordinal) ||
        sqlState is "57P01" or "57P02" or "57P03" or "57014" or "40001" or "40P01");

    private static bool HasPostgresCause(Exception exception)
    {
        for (var e = exception.InnerException; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException)
            {
                return true;
            }
        }
        return false;
    }
}
