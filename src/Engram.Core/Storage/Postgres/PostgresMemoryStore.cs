using Engram.Core.Memories;
using Npgsql;
using NpgsqlTypes;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// The store for teams: one PostgreSQL database that several Engram instances share. Npgsql's pool
/// (automatic preparation of repeated statements on); every statement parameterised and filtered by
/// tenant. Every transaction that appends to the change log first takes the one row of
/// <c>log_head</c> (see <see cref="AppendChangeAsync"/>): sequence numbers are then given in commit
/// order, which is what lets a follower read "everything above the last seq it saw" and never miss
/// an entry, and it also serialises the read-check-write steps (duplicate detection, If-Match, nx/xx,
/// incr) across processes, in the database rather than in one process.
/// </summary>
public sealed partial class PostgresMemoryStore : IMemoryStore, IChangeNotifications, IJobLocks
{
    private readonly NpgsqlDataSource _db;
    // Unpooled sessions that live as long as their purpose: the listener's, and each job lock's (closing one ends its lock for sure).
    private readonly NpgsqlDataSource _sessions;
    private readonly TimeProvider _clock;
    private bool _disposed;

    private PostgresMemoryStore(NpgsqlDataSource db, NpgsqlDataSource sessions, TimeProvider clock, NpgsqlConnectionStringBuilder settings)
    {
        _db = db;
        _sessions = sessions;
        _clock = clock;
        Database = settings.Database ?? "";
        Endpoint = $"{settings.Host}:{settings.Port}/{settings.Database}";
    }

    public string Kind => "postgres";

    public string StoreId { get; private init; } = "";

    /// <summary>The database's name (never the password): what logs and /health may show.</summary>
    public string Database { get; }

    /// <summary><c>host:port/database</c> (never the user or password): what /health, /v1/stats and problem bodies name.</summary>
    public string Endpoint { get; }

    /// <summary>
    /// How long opening a connection may take unless the URL says (<c>?timeout=</c>, seconds): short, so that while the
    /// database is away (a host that drops packets rather than refusing) a request fails over to a 503, or a search to its
    /// indexes, well inside the request timeout (30 s), instead of waiting Npgsql's 15 s default per attempt.
    /// </summary>
    public const int DefaultConnectTimeoutSeconds = 5;

    /// <summary>How long one statement may run unless the URL says (<c>?commandtimeout=</c>): under the request timeout.</summary>
    public const int DefaultCommandTimeoutSeconds = 20;

    /// <summary>Opens the database a <c>postgres://</c> URL (or an Npgsql connection string) names and migrates it.</summary>
    public static PostgresMemoryStore Open(string urlOrConnectionString, TimeProvider? clock = null)
    {
        clock ??= TimeProvider.System;
        var builder = Settings(urlOrConnectionString);
        var db = NpgsqlDataSource.Create(builder);
        try
        {
            using var connection = db.OpenConnection();
            PostgresSchema.Migrate(connection, clock.GetUtcNow().ToUnixTimeMilliseconds());
            // The id written at creation, qualified by the database's oid: a copy of the database (CREATE DATABASE ... TEMPLATE,
            // a pg_dump restored elsewhere) starts with the same store_meta row but is a different store from then on, and an
            // instance's index snapshot of one must never be loaded for the other.
            using var command = new NpgsqlCommand(
                "SELECT (SELECT value FROM store_meta WHERE key = 'store_id') || '.' || (SELECT oid::text FROM pg_database WHERE datname = current_database())",
                connection);
            var storeId = command.ExecuteScalar() as string ?? "";
            using var size = new NpgsqlCommand("SELECT pg_database_size(current_database())", connection);
            var store = new PostgresMemoryStore(db, SessionSource(builder), clock, builder) { StoreId = storeId };
            store._sizeBytes = size.ExecuteScalar() is long bytes ? bytes : 0;
            store._sizeReadAt = Environment.TickCount64;
            return store;
        }
        catch (NpgsqlException ex)
        {
            db.Dispose();
            throw new StoreException($"cannot open the PostgreSQL database '{builder.Database}' on {builder.Host}:{builder.Port}: {ex.Message}", ex);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>The connection settings of <paramref name="urlOrConnectionString"/> with Engram's defaults where it sets none.</summary>
    internal static NpgsqlConnectionStringBuilder Settings(string urlOrConnectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(PostgresUrl.ToConnectionString(urlOrConnectionString));
        // Statements used more than twice on a connection are prepared on it (the server plans them once).
        if (builder.MaxAutoPrepare == 0)
        {
            builder.MaxAutoPrepare = 64;
            builder.AutoPrepareMinUsages = 2;
        }
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = builder.ConnectionString };
        if (!given.ContainsKey("Timeout"))
        {
            builder.Timeout = DefaultConnectTimeoutSeconds;
        }
        if (!given.ContainsKey("Command Timeout"))
        {
            builder.CommandTimeout = DefaultCommandTimeoutSeconds;
        }
        return builder;
    }

    /// <summary>
    /// The database's size (pg_database_size), as last read: read at open, then refreshed in the background at most every
    /// <see cref="SizeRefreshInterval"/> when asked for. A property that a scrape or /v1/stats reads must not wait on a round
    /// trip (nor on the connect time-out while the database is away); the figure is at most that old.
    /// </summary>
    public long SizeBytes
    {
        get
        {
            var now = Environment.TickCount64;
            if (now - Volatile.Read(ref _sizeReadAt) >= (long)SizeRefreshInterval.TotalMilliseconds && Interlocked.CompareExchange(ref _sizeRefreshing, 1, 0) == 0)
            {
                Volatile.Write(ref _sizeReadAt, now);
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await using var command = _db.CreateCommand("SELECT pg_database_size(current_database())");
                        if (await command.ExecuteScalarAsync().ConfigureAwait(false) is long size)
                        {
                            Volatile.Write(ref _sizeBytes, size);
                        }
                    }
                    catch (Exception ex) when (ex is NpgsqlException or ObjectDisposedException or InvalidOperationException)
                    {
                        // The last figure stands; the store's probe reports the outage.
                    }
                    finally
                    {
                        Volatile.Write(ref _sizeRefreshing, 0);
                    }
                });
            }
            return Volatile.Read(ref _sizeBytes);
        }
    }

    /// <summary>How old <see cref="SizeBytes"/> may be before a read of it starts a refresh.</summary>
    public static readonly TimeSpan SizeRefreshInterval = TimeSpan.FromSeconds(10);

    private long _sizeBytes;
    private long _sizeReadAt;
    private int _sizeRefreshing;

    public Task CheckAsync(CancellationToken ct = default) => ReadAsync(c => ScalarAsync<int>(c, "SELECT 1", ct), ct);

    /// <summary>The newest committed seq: log_head's value is committed only with the entries up to it.</summary>
    public Task<long> GetLastSeqAsync(CancellationToken ct = default) =>
        ReadAsync(c => ScalarAsync<long>(c, "SELECT seq FROM log_head", ct), ct);

    public async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await _countFold.ConfigureAwait(false); // never throws (FoldCountsNowAndThen)
            await _kvStatisticsCheck.ConfigureAwait(false); // nor this (RefreshKvStatisticsNowAndThen)
            await _sessions.DisposeAsync().ConfigureAwait(false);
            await _db.DisposeAsync().ConfigureAwait(false);
        }
    }

    private long NowMs => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Runs <paramref name="read"/> on a pooled connection (autocommit: each statement its own snapshot).</summary>
    private async Task<T> ReadAsync<T>(Func<NpgsqlConnection, Task<T>> read, CancellationToken ct)
    {
        try
        {
            await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
            return await read(connection).ConfigureAwait(false);
        }
        catch (NpgsqlException ex) when (ex is not PostgresException { SqlState: "23505" })
        {
            throw Failed(ex);
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> in one READ COMMITTED transaction and commits; relaxed durability
    /// commits without waiting for the WAL flush. A deadlock or serialisation failure is retried (the
    /// function runs again from the start in a new transaction).
    /// </summary>
    private Task<T> WriteAsync<T>(Func<NpgsqlConnection, Task<T>> write, WriteDurability durability, CancellationToken ct) =>
        WriteAsync(write, durability, durabilitySetByWrite: false, ct);

    /// <summary><paramref name="durabilitySetByWrite"/>: <paramref name="write"/>'s first statement sets relaxed durability itself (<see cref="LockLogAsync"/>).</summary>
    private async Task<T> WriteAsync<T>(Func<NpgsqlConnection, Task<T>> write, WriteDurability durability, bool durabilitySetByWrite, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
                if (durability == WriteDurability.Relaxed && !durabilitySetByWrite)
                {
                    await ExecuteAsync(connection, "SET LOCAL synchronous_commit = off", ct).ConfigureAwait(false);
                }
                var result = await write(connection).ConfigureAwait(false);
                // Not cancellable: once the work is done, a cancelled caller must not leave it half-known.
                await transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
                return result;
            }
            catch (PostgresException ex) when (ex.SqlState is "40001" or "40P01" && attempt < 5)
            {
                await Task.Delay(Random.Shared.Next(1, 20 * attempt), ct).ConfigureAwait(false);
            }
            catch (NpgsqlException ex)
            {
                throw Failed(ex);
            }
        }
    }

    /// <summary>
    /// The store's exception for a failed statement: <see cref="StoreUnavailableException"/> when the database is away
    /// (<see cref="StoreFailure.IsUnavailable(Exception)"/>), else a plain <see cref="StoreException"/>. A database that went
    /// away leaves broken sessions in the pool (a fast shutdown ends every one of them); Npgsql drops a session only when
    /// a statement fails on it, so after a restart each stale one would fail one more request. The pool is cleared
    /// instead: idle sessions are closed now, busy ones when returned, and the next request opens a fresh one.
    /// </summary>
    private StoreException Failed(NpgsqlException exception)
    {
        if (!StoreFailure.IsUnavailable(exception))
        {
            return new StoreException($"the PostgreSQL store failed: {exception.Message}", exception);
        }
        _db.Clear();
        return new StoreUnavailableException($"the PostgreSQL database {Endpoint} is unavailable: {exception.Message}", $"postgres {Endpoint}", exception);
    }

    private Task<T> WriteAsync<T>(Func<NpgsqlConnection, Task<T>> write, CancellationToken ct) => WriteAsync(write, WriteDurability.Full, ct);

    private Task<T> LoggedAsync<T>(Func<NpgsqlConnection, Task<T>> write, CancellationToken ct) => LoggedAsync(write, WriteDurability.Full, ct);

    /// <summary>
    /// The next seq of the log, as a statement's first CTE (<c>head</c>, with column <c>seq</c>). A logged transaction holds
    /// log_head's row locked from its start (<see cref="LockLogAsync"/>, which also copies the head into the transaction's
    /// own setting <c>engram.log_seq</c>), counts its seqs on in that setting, and moves log_head once, just before it
    /// commits (<see cref="MoveHeadAndNotifyAsync"/>). Moving log_head's one row for every entry, as before session 32,
    /// made PostgreSQL reach the row through a chain of versions that grew with each update of the transaction: 5,000
    /// updates in one transaction took 0.6 s, 20,000 took 4.1 s (an MSET or MULTI of many keys, a large group of SETs).
    /// A setting made with <c>set_config(…, true)</c> is rolled back with the transaction or savepoint that made it, as
    /// the row's update was.
    /// </summary>
    private const string NextSeq =
        "head AS (SELECT set_config('engram.log_seq', (current_setting('engram.log_seq')::bigint + 1)::text, true)::bigint AS seq)";

    /// <summary>
    /// Appends a change-log entry and returns its seq (<see cref="NextSeq"/>). The transaction holds log_head's row
    /// locked until commit, so the next writer's seq is given only after this transaction has committed (or rolled
    /// back, when the same seq is given again): seqs are contiguous and in commit order, and a follower that reads
    /// above its last seq skips nothing. Writers that check before they write (duplicates, versions, nx/xx) hold it
    /// too, so those checks are serialised across every instance on the database.
    /// </summary>
    private static async Task<long> AppendChangeAsync(NpgsqlConnection c, string tenant, string entity, string entityId, string op, long now)
    {
        await using var command = new NpgsqlCommand(
            $"WITH {NextSeq} " +
            "INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) SELECT seq, $1, $2, $3, $4, $5 FROM head RETURNING seq", c);
        command.Text(tenant).Text(entity).Text(entityId).Text(op).Int(now);
        return (long)(await command.ExecuteScalarAsync().ConfigureAwait(false))!;
    }

    /// <summary>
    /// <see cref="AppendChangeAsync"/> for many entries at once, as statements of <paramref name="batch"/>: the
    /// caller holds the log lock and has counted the seqs on from the transaction's head (<c>engram.log_seq</c>), so the
    /// head moves to the last of them and the entries go in as given. Whatever AppendChangeAsync does besides must happen here too.
    /// </summary>
    private static void AddChangeAppends(NpgsqlBatch batch, string tenant, string entity, IReadOnlyList<(string EntityId, long Seq)> entries, string op, long now)
    {
        batch.BatchCommands.Add(ForBatch(new NpgsqlCommand("SELECT set_config('engram.log_seq', $1::text, true)").Int(entries[^1].Seq)));
        foreach (var (entityId, seq) in entries)
        {
            batch.BatchCommands.Add(ForBatch(new NpgsqlCommand("INSERT INTO changelog(seq, tenant, entity, entity_id, op, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .Int(seq).Text(tenant).Text(entity).Text(entityId).Text(op).Int(now)));
        }
    }

    /// <summary>A statement built with the parameter helpers, as one statement of an <see cref="NpgsqlBatch"/> (one round trip for all).</summary>
    private static NpgsqlBatchCommand ForBatch(NpgsqlCommand command)
    {
        using (command)
        {
            var statement = new NpgsqlBatchCommand(command.CommandText);
            foreach (NpgsqlParameter parameter in command.Parameters)
            {
                statement.Parameters.Add(parameter.Clone());
            }
            return statement;
        }
    }

    /// <summary>
    /// Takes the log lock first, before any row a check reads, so checks and writes of all instances queue in one order (no
    /// deadlock), and starts the transaction's count of seqs at the head (<see cref="NextSeq"/>).
    /// </summary>
    private static Task<long> LockLogAsync(NpgsqlConnection c, WriteDurability durability) => ScalarAsync<long>(c,
        // Relaxed durability (SET LOCAL synchronous_commit = off) set in the same statement: one round trip fewer per write.
        durability == WriteDurability.Relaxed
            ? "SELECT seq, set_config('engram.log_seq', seq::text, true), set_config('synchronous_commit', 'off', true) FROM log_head FOR UPDATE"
            : "SELECT seq, set_config('engram.log_seq', seq::text, true) FROM log_head FOR UPDATE", CancellationToken.None);

    internal static async Task<int> ExecuteAsync(NpgsqlConnection c, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, c);
        return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection c, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, c);
        var value = await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return value is null or DBNull ? default! : (T)value;
    }

    private static NpgsqlCommand Command(NpgsqlConnection c, string sql) => new(sql, c);
}

/// <summary>Positional parameters with their types given, so a null still has one.</summary>
internal static class PostgresParameters
{
    public static NpgsqlCommand Text(this NpgsqlCommand command, string? value) => Add(command, value, NpgsqlDbType.Text);

    public static NpgsqlCommand Int(this NpgsqlCommand command, long? value) => Add(command, value, NpgsqlDbType.Bigint);

    public static NpgsqlCommand Real(this NpgsqlCommand command, double? value) => Add(command, value, NpgsqlDbType.Double);

    public static NpgsqlCommand Bytes(this NpgsqlCommand command, byte[]? value) => Add(command, value, NpgsqlDbType.Bytea);

    public static NpgsqlCommand TextArray(this NpgsqlCommand command, string[] value) => Add(command, value, NpgsqlDbType.Array | NpgsqlDbType.Text);

    public static NpgsqlCommand Value(this NpgsqlCommand command, object? value) => value switch
    {
        null => Add(command, null, NpgsqlDbType.Text),
        string s => command.Text(s),
        long l => command.Int(l),
        int i => command.Int(i),
        double d => command.Real(d),
        string[] a => command.TextArray(a),
        _ => throw new ArgumentException($"no PostgreSQL type for {value.GetType().Name}", nameof(value)),
    };

    private static NpgsqlCommand Add(NpgsqlCommand command, object? value, NpgsqlDbType type)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value, NpgsqlDbType = type });
        return command;
    }

    public static string? TextOrNull(this NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    public static long? Int64OrNull(this NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    public static double? DoubleOrNull(this NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDouble(i);
}
