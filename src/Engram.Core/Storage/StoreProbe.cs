using System.Diagnostics;
using Engram.Core.Storage.Postgres;
using Engram.Core.Storage.Sqlite;

namespace Engram.Core.Storage;

/// <summary>
/// Asks the store whether it answers (one trivial statement, timed: the round trip) and where its change log is, and
/// remembers the answer: /health, /v1/stats, /metrics and engram doctor all report from it, and while the database is
/// away the last change-log position it gave stands in for the one it cannot give. Never throws for a store that is
/// away; that is its answer.
/// </summary>
public sealed class StoreProbe(IMemoryStore store)
{
    private StoreProbeResult? _last;
    private long _lastSeq = -1;

    /// <summary>The backend: "sqlite" or "postgres".</summary>
    public string Kind => store.Kind;

    /// <summary>Where the store is, with no credentials: <c>host:port/database</c>, or the SQLite file's path.</summary>
    public string Location => Describe(store);

    /// <summary>The last probe's answer (null before the first).</summary>
    public StoreProbeResult? Last => Volatile.Read(ref _last);

    /// <summary>The newest change-log position the store gave (a probe, or a write of this process passed to <see cref="Saw"/>); null before any.</summary>
    public long? LastKnownSeq => Interlocked.Read(ref _lastSeq) is >= 0 and var seq ? seq : null;

    public static string Describe(IMemoryStore store) => store switch
    {
        PostgresMemoryStore postgres => postgres.Endpoint,
        SqliteMemoryStore sqlite => sqlite.DatabasePath,
        _ => store.Kind,
    };

    /// <summary>Records a change-log position seen elsewhere (it only moves forward).</summary>
    public void Saw(long seq)
    {
        Common.InterlockedMax.Raise(ref _lastSeq, seq);
    }

    /// <summary>Pings the store and reads its change-log position.</summary>
    public async Task<StoreProbeResult> RunAsync(CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        StoreProbeResult result;
        try
        {
            await store.CheckAsync(ct).ConfigureAwait(false);
            var rtt = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Saw(await store.GetLastSeqAsync(ct).ConfigureAwait(false));
            result = new StoreProbeResult(true, Math.Round(rtt, 3), null, DateTimeOffset.UtcNow);
        }
        catch (Exception ex) when (ex is StoreException or ObjectDisposedException && !ct.IsCancellationRequested)
        {
            result = new StoreProbeResult(false, null, Reason(ex), DateTimeOffset.UtcNow);
        }
        Volatile.Write(ref _last, result);
        return result;
    }

    /// <summary>
    /// Why the store did not answer, in words safe to show (no SQL text, no password): the connection failure's own
    /// message (refused, timed out, reset), a SQLSTATE, or the exception's type.
    /// </summary>
    private static string Reason(Exception exception)
    {
        for (var e = exception.InnerException; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case Npgsql.PostgresException postgres:
                    return $"PostgreSQL error {postgres.SqlState}" + (StoreFailure.IsUnavailable(postgres.SqlState) ? $" ({postgres.MessageText})" : "");
                case System.Net.Sockets.SocketException socket:
                    return socket.Message;
                case TimeoutException:
                    return "no answer in time";
                case IOException io:
                    return io.Message;
            }
        }
        return exception is SqliteException sqlite ? $"SQLite result code {sqlite.ResultCode}"
            : exception is StoreUnavailableException ? "unavailable"
            : $"the store failed ({exception.GetType().Name})";
    }
}

/// <summary>One probe: whether the store answered, in how many milliseconds, why not, and when.</summary>
public sealed record StoreProbeResult(bool Reachable, double? RoundTripMs, string? Error, DateTimeOffset At);
