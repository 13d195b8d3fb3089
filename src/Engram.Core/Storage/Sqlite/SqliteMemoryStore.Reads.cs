using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

public sealed partial class SqliteMemoryStore
{
    public Task<Memory?> GetAsync(Caller caller, string id, CancellationToken ct = default) =>
        _readers.ReadAsync(c => FindLive(c, caller.Tenant, id, NowMs)?.Memory, ct).AsTask();

    public Task<MemoryPage> ListAsync(Caller caller, MemoryFilter filter, int limit, string? cursor, CancellationToken ct = default)
    {
        var afterId = cursor is null ? null : DecodeCursor(cursor);
        return _readers.ReadAsync(c =>
        {
            var sql = SqliteFilterSql.Build(caller.Tenant, filter, NowMs);
            if (afterId is not null)
            {
                sql.Add("m.id < ?", afterId);
            }
            var items = new List<Memory>(Math.Min(limit, 256));
            using var statement = c.Prepare($"SELECT {MemoryColumns} FROM memories m WHERE {sql.Where} ORDER BY m.id DESC LIMIT {limit + 1}");
            statement.BindAll(sql.Parameters.ToArray());
            while (statement.Step())
            {
                items.Add(ReadMemory(statement));
            }
            string? next = null;
            if (items.Count > limit)
            {
                items.RemoveAt(items.Count - 1);
                next = EncodeCursor(items[^1].Id);
            }
            return new MemoryPage(items, next);
        }, ct).AsTask();
    }

    public Task<IReadOnlyList<HistoryEntry>> GetHistoryAsync(Caller caller, string id, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<HistoryEntry>>(c =>
        {
            var entries = new List<HistoryEntry>();
            using var statement = c.Prepare(
                "SELECT seq, event, actor, at, version, changes FROM memory_history WHERE tenant = ?1 AND memory_id = ?2 ORDER BY hid");
            statement.BindAll([caller.Tenant, id]);
            while (statement.Step())
            {
                entries.Add(ReadHistory(statement, id));
            }
            return entries;
        }, ct).AsTask();

    public Task<MemoryCounts> GetStatsAsync(Caller caller, MemoryFilter? filter = null, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            if (filter is null || filter == MemoryFilter.None)
            {
                return CountedStats(c, caller.Tenant, NowMs);
            }
            // The filter builder puts the tenant and expiry first, as for every other read.
            var sql = SqliteFilterSql.Build(caller.Tenant, filter, NowMs);
            var byType = CountBy(c, "type", sql);
            var byTier = CountBy(c, "tier", sql);
            return new MemoryCounts(byType.Values.Sum(), byType, byTier);
        }, ct).AsTask();

    public Task<IReadOnlyList<TenantMemory>> GetForIndexAsync(IReadOnlyList<string> ids, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<TenantMemory>>(c =>
        {
            var now = NowMs;
            var found = new List<TenantMemory>(ids.Count);
            using var statement = c.Prepare($"SELECT {MemoryColumns}, m.tenant FROM memories m WHERE m.id = ?1 AND (m.expires_at IS NULL OR m.expires_at > ?2)");
            foreach (var id in ids)
            {
                statement.Reset();
                statement.Bind(1, id);
                statement.Bind(2, now);
                if (statement.Step())
                {
                    found.Add(new TenantMemory(statement.GetText(MemoryColumnCount), ReadMemory(statement)));
                }
            }
            return found;
        }, ct).AsTask();

    public Task<IReadOnlyList<string>> ListIdsAsync(Caller caller, MemoryFilter filter, int max, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<string>>(c =>
        {
            var sql = SqliteFilterSql.Build(caller.Tenant, filter, NowMs);
            var ids = new List<string>();
            using var statement = c.Prepare($"SELECT m.id FROM memories m WHERE {sql.Where} LIMIT {max}");
            statement.BindAll(sql.Parameters.ToArray());
            while (statement.Step())
            {
                ids.Add(statement.GetText(0));
            }
            return ids;
        }, ct).AsTask();

    public Task<IReadOnlyList<Memory>> GetManyAsync(Caller caller, IReadOnlyList<string> ids, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<Memory>>(c =>
        {
            var now = NowMs;
            var found = new List<Memory>(ids.Count);
            foreach (var id in ids)
            {
                if (FindLive(c, caller.Tenant, id, now) is { } row)
                {
                    found.Add(row.Memory);
                }
            }
            return found;
        }, ct).AsTask();

    private static Dictionary<string, long> CountBy(SqliteConnection c, string column, SqliteFilterSql filter)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        using var statement = c.Prepare(
            $"SELECT m.{column}, COUNT(*) FROM memories m WHERE {filter.Where} GROUP BY m.{column} ORDER BY m.{column}");
        statement.BindAll(filter.Parameters.ToArray());
        while (statement.Step())
        {
            counts[statement.GetText(0)] = statement.GetInt64(1);
        }
        return counts;
    }


}
