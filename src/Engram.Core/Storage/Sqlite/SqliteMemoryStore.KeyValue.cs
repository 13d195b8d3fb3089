using System.Globalization;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Key-value state on the same writer as memories: a KV write joins the same group commit, and its
/// entry, history row and change-log entry (entity "kv") commit together. Every statement filters
/// on the caller's tenant; an entry past its expiry is treated as missing everywhere.
/// </summary>
public sealed partial class SqliteMemoryStore : IKeyValueStore
{
    private const string KvLive = "(expires_at IS NULL OR expires_at > ?3)";

    public Task<KvSetResult> SetKvAsync(Caller caller, KvWrite write, CancellationToken ct = default) =>
        _writer.WriteAsync(c => SetOne(c, caller, write, NowMs), ct);

    public Task<IReadOnlyList<KvSetResult>> SetManyKvAsync(Caller caller, IReadOnlyList<KvWrite> writes, CancellationToken ct = default) =>
        _writer.WriteAsync<IReadOnlyList<KvSetResult>>(c =>
        {
            var now = NowMs;
            return [.. writes.Select(w => SetOne(c, caller, w, now))];
        }, ct);

    public Task<KvEntry?> GetKvAsync(Caller caller, string storedKey, CancellationToken ct = default) =>
        _readers.ReadAsync(c => FindKv(c, caller.Tenant, storedKey, NowMs, live: true), ct).AsTask();

    public Task<IReadOnlyList<KvEntry?>> GetManyKvAsync(Caller caller, IReadOnlyList<string> storedKeys, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<KvEntry?>>(c =>
        {
            var now = NowMs;
            return [.. storedKeys.Select(k => FindKv(c, caller.Tenant, k, now, live: true))];
        }, ct).AsTask();

    public Task<bool> DeleteKvAsync(Caller caller, string storedKey, CancellationToken ct = default) =>
        _writer.WriteAsync(c =>
        {
            var now = NowMs;
            if (FindKv(c, caller.Tenant, storedKey, now, live: true) is not { } entry)
            {
                return false;
            }
            DeleteKv(c, caller, entry, KvEvents.Deleted, now);
            return true;
        }, ct);

    public Task<long> IncrementKvAsync(Caller caller, string storedKey, long by, long? expiresAtMsIfNew, CancellationToken ct = default) =>
        _writer.WriteAsync(c =>
        {
            var now = NowMs;
            var current = FindKv(c, caller.Tenant, storedKey, now, live: false);
            var live = current is not null && IsLive(current, now);
            long value = 0;
            if (live && !long.TryParse(current!.ValueJson, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value))
            {
                throw new ConflictException($"the value of '{KvKeys.ToDisplay(caller.Tenant, storedKey)}' is not an integer, so it cannot be incremented");
            }
            long next;
            try
            {
                next = checked(value + by);
            }
            catch (OverflowException)
            {
                throw new ConflictException($"incrementing '{KvKeys.ToDisplay(caller.Tenant, storedKey)}' by {by} would overflow a 64-bit integer");
            }
            var json = next.ToString(CultureInfo.InvariantCulture);
            var expires = live ? current!.ExpiresAtMs : expiresAtMsIfNew;
            WriteKv(c, caller, storedKey, json, expires, current, live, KvEvents.Incremented, now);
            return next;
        }, ct);

    public Task<bool> ExpireKvAsync(Caller caller, string storedKey, long? expiresAtMs, CancellationToken ct = default) =>
        _writer.WriteAsync(c =>
        {
            var now = NowMs;
            if (FindKv(c, caller.Tenant, storedKey, now, live: true) is not { } entry)
            {
                return false;
            }
            var seq = AppendKvChange(c, caller.Tenant, storedKey, ChangeRecord.Upsert, now);
            c.ExecuteNonQuery("UPDATE kv_entries SET expires_at = ?3, version = version + 1, seq = ?4, updated_at = ?5 WHERE tenant = ?1 AND key = ?2",
                caller.Tenant, storedKey, expiresAtMs, seq, now);
            AppendKvHistory(c, caller, storedKey, seq, KvEvents.TtlChanged, now, entry.Version + 1, null, expiresAtMs);
            return true;
        }, ct);

    public Task<KvStoredPage> ListKvAsync(Caller caller, KvGlob pattern, int limit, string? afterKey, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            var items = SelectMatching(c, caller.Tenant, pattern, afterKey, limit + 1, NowMs);
            string? last = null;
            if (items.Count > limit)
            {
                items.RemoveAt(items.Count - 1);
                last = items[^1].StoredKey;
            }
            return new KvStoredPage(items, last);
        }, ct).AsTask();

    public async Task<int> DeleteMatchingKvAsync(Caller caller, KvGlob pattern, CancellationToken ct = default)
    {
        var total = 0;
        while (true)
        {
            var deleted = await _writer.WriteAsync(c =>
            {
                var now = NowMs;
                var doomed = SelectMatching(c, caller.Tenant, pattern, null, DeleteChunk, now);
                foreach (var entry in doomed)
                {
                    DeleteKv(c, caller, entry, KvEvents.Deleted, now);
                }
                return doomed.Count;
            }, ct).ConfigureAwait(false);
            total += deleted;
            if (deleted < DeleteChunk)
            {
                return total;
            }
        }
    }

    public Task<IReadOnlyList<KvHistoryEntry>> GetKvHistoryAsync(Caller caller, string storedKey, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<KvHistoryEntry>>(c =>
        {
            var entries = new List<KvHistoryEntry>();
            using var statement = c.Prepare(
                "SELECT seq, event, actor, at, version, value, expires_at FROM kv_history WHERE tenant = ?1 AND key = ?2 ORDER BY hid");
            statement.BindAll([caller.Tenant, storedKey]);
            while (statement.Step())
            {
                entries.Add(new KvHistoryEntry(statement.GetInt64(0), statement.GetText(1), statement.GetText(2), FromMs(statement.GetInt64(3)),
                    statement.GetInt64(4), statement.GetTextOrNull(5), FromMs(statement.GetInt64OrNull(6))));
            }
            return entries;
        }, ct).AsTask();

    public Task<int> DeleteExpiredKvAsync(int max, CancellationToken ct = default) =>
        InChunksAsync(max, (c, chunk, now) =>
        {
            var expired = new List<(string Tenant, KvEntry Entry)>();
            using (var statement = c.Prepare(
                "SELECT tenant, key, expires_at, version, created_at, updated_at FROM kv_entries WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2"))
            {
                statement.BindAll([now, chunk]);
                while (statement.Step())
                {
                    expired.Add((statement.GetText(0), new KvEntry(statement.GetText(1), "", statement.GetInt64OrNull(2),
                        statement.GetInt64(3), statement.GetInt64(4), statement.GetInt64(5))));
                }
            }
            foreach (var (tenant, entry) in expired)
            {
                DeleteKv(c, Caller.System("ttl-sweeper", tenant), entry, KvEvents.Expired, now);
            }
            return expired.Count;
        }, ct);

    private static KvSetResult SetOne(SqliteConnection c, Caller caller, KvWrite write, long now)
    {
        var current = FindKv(c, caller.Tenant, write.StoredKey, now, live: false);
        var live = current is not null && IsLive(current, now);
        if (write.Condition == KvCondition.IfMissing && live)
        {
            throw new ConflictException($"key '{KvKeys.ToDisplay(caller.Tenant, write.StoredKey)}' exists (nx)");
        }
        if (write.Condition == KvCondition.IfExists && !live)
        {
            throw new ConflictException($"key '{KvKeys.ToDisplay(caller.Tenant, write.StoredKey)}' does not exist (xx)");
        }
        var (version, seq) = WriteKv(c, caller, write.StoredKey, write.ValueJson, write.ExpiresAtMs, current, live, live ? KvEvents.Updated : KvEvents.Created, now);
        return new KvSetResult(!live, version, seq);
    }

    /// <summary>Upserts the entry; an expired row being replaced counts as new (created_at restarts) but its version keeps rising.</summary>
    private static (long Version, long Seq) WriteKv(SqliteConnection c, Caller caller, string storedKey, string json, long? expiresAtMs,
        KvEntry? current, bool live, string historyEvent, long now)
    {
        var version = (current?.Version ?? 0) + 1;
        var createdAt = live ? current!.CreatedAtMs : now;
        var seq = AppendKvChange(c, caller.Tenant, storedKey, ChangeRecord.Upsert, now);
        c.ExecuteNonQuery(
            "INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) " +
            "ON CONFLICT(tenant, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version, " +
            "seq = excluded.seq, created_at = excluded.created_at, updated_at = excluded.updated_at",
            caller.Tenant, storedKey, json, expiresAtMs, version, seq, createdAt, now);
        AppendKvHistory(c, caller, storedKey, seq, historyEvent, now, version, json, expiresAtMs);
        return (version, seq);
    }

    private static void DeleteKv(SqliteConnection c, Caller caller, KvEntry entry, string historyEvent, long now)
    {
        var seq = AppendKvChange(c, caller.Tenant, entry.StoredKey, ChangeRecord.Delete, now);
        c.ExecuteNonQuery("DELETE FROM kv_entries WHERE tenant = ?1 AND key = ?2", caller.Tenant, entry.StoredKey);
        AppendKvHistory(c, caller, entry.StoredKey, seq, historyEvent, now, entry.Version, null, entry.ExpiresAtMs);
    }

    private static bool IsLive(KvEntry entry, long now) => entry.ExpiresAtMs is not { } expires || expires > now;

    private static KvEntry? FindKv(SqliteConnection c, string tenant, string storedKey, long now, bool live)
    {
        using var statement = c.Prepare(live
            ? $"SELECT value, expires_at, version, created_at, updated_at FROM kv_entries WHERE tenant = ?1 AND key = ?2 AND {KvLive}"
            : "SELECT value, expires_at, version, created_at, updated_at FROM kv_entries WHERE tenant = ?1 AND key = ?2");
        statement.Bind(1, tenant);
        statement.Bind(2, storedKey);
        if (live)
        {
            statement.Bind(3, now);
        }
        return statement.Step()
            ? new KvEntry(storedKey, statement.GetText(0), statement.GetInt64OrNull(1), statement.GetInt64(2), statement.GetInt64(3), statement.GetInt64(4))
            : null;
    }

    /// <summary>
    /// Live entries matching <paramref name="pattern"/> after <paramref name="afterKey"/>, in key order, without values.
    /// The literal prefix bounds the scan to its key range (GLOB alone could not use the primary key here).
    /// </summary>
    private static List<KvEntry> SelectMatching(SqliteConnection c, string tenant, KvGlob pattern, string? afterKey, int limit, long now)
    {
        var upper = UpperBound(pattern.Prefix);
        var sql = "SELECT key, expires_at, version, created_at, updated_at FROM kv_entries " +
            $"WHERE tenant = ?1 AND key GLOB ?2 AND {KvLive} AND key >= ?4 AND key > ?5" +
            (upper is null ? "" : " AND key < CAST(?6 AS TEXT)") + " ORDER BY key LIMIT " + limit.ToString(CultureInfo.InvariantCulture);
        var items = new List<KvEntry>(Math.Min(limit, 256));
        using var statement = c.Prepare(sql);
        statement.BindAll([tenant, pattern.Sql, now, pattern.Prefix, afterKey ?? ""]);
        if (upper is not null)
        {
            statement.Bind(6, upper);
        }
        while (statement.Step())
        {
            items.Add(new KvEntry(statement.GetText(0), "", statement.GetInt64OrNull(1), statement.GetInt64(2), statement.GetInt64(3), statement.GetInt64(4)));
        }
        return items;
    }

    /// <summary>The smallest byte string above every key starting with <paramref name="prefix"/> (UTF-8 never holds 0xFF, so the last byte can always rise).</summary>
    private static byte[]? UpperBound(string prefix)
    {
        if (prefix.Length == 0)
        {
            return null;
        }
        var bytes = Encoding.UTF8.GetBytes(prefix);
        bytes[^1]++;
        return bytes;
    }

    private static long AppendKvChange(SqliteConnection c, string tenant, string storedKey, string op, long now)
    {
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            tenant, ChangeRecord.KeyValueEntity, storedKey, op, now);
        return c.LastInsertRowId;
    }

    private static void AppendKvHistory(SqliteConnection c, Caller caller, string storedKey, long seq, string historyEvent, long now, long version, string? json, long? expiresAtMs) =>
        c.ExecuteNonQuery(
            "INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            caller.Tenant, storedKey, seq, historyEvent, caller.Actor, now, version, json, expiresAtMs);
}
