using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

public sealed partial class SqliteMemoryStore
{
    /// <summary>How many rows one transaction of a bulk delete or the sweeper removes, so other writes interleave.</summary>
    private const int DeleteChunk = 500;

    public Task<WriteResult> CreateAsync(Caller caller, Memory memory, DuplicatePolicy policy, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var outcome = CreateOne(c, caller, memory, policy, NowMs);
            return outcome.Rejected is { } existing
                ? throw new ConflictException($"a memory with the same content already exists in this scope: {existing}", existing)
                : outcome.Result!;
        }, ct);

    public Task<IReadOnlyList<BatchItemResult>> CreateManyAsync(Caller caller, IReadOnlyList<Memory> memories, DuplicatePolicy policy, CancellationToken ct = default) =>
        WriteApartFromKvAsync<IReadOnlyList<BatchItemResult>>(c =>
        {
            var now = NowMs;
            var results = new BatchItemResult[memories.Count];
            for (var i = 0; i < memories.Count; i++)
            {
                var outcome = CreateOne(c, caller, memories[i], policy, now);
                results[i] = outcome.Rejected is { } existing
                    ? new BatchItemResult(BatchItemResult.ErrorStatus, existing, null, $"duplicate of {existing}")
                    : new BatchItemResult(outcome.Result!.Duplicate ? BatchItemResult.DuplicateStatus : BatchItemResult.Created,
                        outcome.Result.Memory.Id, outcome.Result.Seq, null);
            }
            return results;
        }, ct);

    public async Task<WriteResult> UpdateAsync(Caller caller, string id, long? expectedVersion, Func<Memory, Memory> apply, CancellationToken ct = default) =>
        await WriteApartFromKvAsync(c =>
        {
            var now = NowMs;
            var (current, rid, currentSeq) = FindLive(c, caller.Tenant, id, now)
                ?? throw new NotFoundException($"no memory with id '{id}'");
            StoreRows.CheckVersion(id, current, expectedVersion);
            var updated = apply(current);
            var changes = MemoryDiff.Changes(current, updated);
            if (changes.EnumerateObject().Any() is false)
            {
                return new WriteResult(current, false, currentSeq); // nothing changed: no version, no history
            }
            updated = updated with { Version = current.NextVersion() };
            var seq = AppendChange(c, caller.Tenant, id, ChangeRecord.Upsert, now);
            using (var statement = c.Prepare(UpdateMemorySql))
            {
                BindMemory(statement, caller.Tenant, updated, seq);
                statement.StepToEnd();
            }
            if (!current.Tags.SequenceEqual(updated.Tags, StringComparer.Ordinal))
            {
                c.ExecuteNonQuery("DELETE FROM memory_tags WHERE rid = ?1", rid);
                InsertTags(c, rid, updated.Tags);
            }
            if (!current.Entities.SequenceEqual(updated.Entities, StringComparer.Ordinal))
            {
                c.ExecuteNonQuery("DELETE FROM memory_entities WHERE rid = ?1", rid);
                InsertEntities(c, rid, updated.Entities);
            }
            CarryVectors(c, caller.Tenant, id, !string.Equals(current.Content, updated.Content, StringComparison.Ordinal), updated.Version);
            AppendHistory(c, caller, id, seq, HistoryEvents.Updated, updated.UpdatedAt.ToUnixTimeMilliseconds(), updated.Version, changes);
            return new WriteResult(updated, false, seq);
        }, ct).ConfigureAwait(false);

    public Task<long?> DeleteAsync(Caller caller, string id, long? expectedVersion = null, CancellationToken ct = default) =>
        WriteApartFromKvAsync<long?>(c =>
        {
            var now = NowMs;
            if (FindLive(c, caller.Tenant, id, now) is not { } found)
            {
                return null;
            }
            StoreRows.CheckVersion(id, found.Memory, expectedVersion);
            return DeleteOne(c, caller, found.Memory, found.Rid, HistoryEvents.Deleted, now);
        }, ct);

    public async Task<BulkDeleteResult> DeleteManyAsync(Caller caller, MemoryFilter filter, CancellationToken ct = default)
    {
        var total = 0;
        long? lastSeq = null;
        while (true)
        {
            var (deleted, seq) = await WriteApartFromKvAsync(c =>
            {
                var now = NowMs;
                var doomed = SelectRows(c, SqliteFilterSql.Build(caller.Tenant, filter, now), DeleteChunk);
                long? last = null;
                foreach (var (memory, rid) in doomed)
                {
                    last = DeleteOne(c, caller, memory, rid, HistoryEvents.Deleted, now);
                }
                return (doomed.Count, last);
            }, ct).ConfigureAwait(false);
            total += deleted;
            lastSeq = seq ?? lastSeq;
            if (deleted < DeleteChunk)
            {
                return new BulkDeleteResult(total, lastSeq);
            }
        }
    }

    public Task<int> DeleteExpiredAsync(int max, CancellationToken ct = default) =>
        InChunksAsync(max, (c, chunk, now) =>
        {
            var expired = new List<(Memory Memory, long Rid, string Tenant)>();
            using (var statement = c.Prepare(
                $"SELECT {MemoryColumns}, m.rid, m.tenant FROM memories m WHERE m.expires_at IS NOT NULL AND m.expires_at <= ?1 LIMIT ?2"))
            {
                statement.BindAll([now, chunk]);
                while (statement.Step())
                {
                    expired.Add((ReadMemory(statement), statement.GetInt64(MemoryColumnCount), statement.GetText(MemoryColumnCount + 1)));
                }
            }
            foreach (var (memory, rid, tenant) in expired)
            {
                DeleteOne(c, Caller.System("ttl-sweeper", tenant), memory, rid, HistoryEvents.Expired, now);
            }
            return expired.Count;
        }, ct);

    /// <summary>
    /// Runs <paramref name="deleteChunk"/> (given the chunk size and now) in one transaction per chunk
    /// until it deletes fewer than a chunk or <paramref name="max"/> in all, so other writes interleave
    /// with a large sweep. Returns how many were deleted.
    /// </summary>
    private async Task<int> InChunksAsync(int max, Func<SqliteConnection, int, long, int> deleteChunk, CancellationToken ct)
    {
        var total = 0;
        while (total < max)
        {
            var chunk = Math.Min(DeleteChunk, max - total);
            var deleted = await WriteApartFromKvAsync(c => deleteChunk(c, chunk, NowMs), ct).ConfigureAwait(false);
            total += deleted;
            if (deleted < chunk)
            {
                break;
            }
        }
        return total;
    }

    public Task RecordAccessAsync(string tenant, IReadOnlyList<(string Id, int Count, DateTimeOffset At)> accesses, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            foreach (var (id, count, at) in accesses)
            {
                c.ExecuteNonQuery(
                    "UPDATE memories SET access_count = access_count + ?1, last_accessed_at = MAX(COALESCE(last_accessed_at, 0), ?2) WHERE id = ?3 AND tenant = ?4",
                    count, at.ToUnixTimeMilliseconds(), id, tenant);
            }
            return accesses.Count;
        }, ct);

    private readonly record struct CreateOutcome(WriteResult? Result, string? Rejected);

    private static CreateOutcome CreateOne(SqliteConnection c, Caller caller, Memory memory, DuplicatePolicy policy, long now)
    {
        if (policy != DuplicatePolicy.Allow && FindDuplicate(c, caller.Tenant, memory, now) is { } existing)
        {
            return policy == DuplicatePolicy.Reject
                ? new CreateOutcome(null, existing.Memory.Id)
                : new CreateOutcome(new WriteResult(existing.Memory, true, existing.Seq), null);
        }

        var seq = AppendChange(c, caller.Tenant, memory.Id, ChangeRecord.Upsert, now);
        using (var statement = c.Prepare(InsertMemorySql))
        {
            BindMemory(statement, caller.Tenant, memory, seq);
            statement.StepToEnd();
        }
        var rowId = c.LastInsertRowId;
        InsertTags(c, rowId, memory.Tags);
        InsertEntities(c, rowId, memory.Entities);
        AppendHistory(c, caller, memory.Id, seq, HistoryEvents.Created, memory.UpdatedAt.ToUnixTimeMilliseconds(), memory.Version, MemoryDiff.Snapshot(memory));
        return new CreateOutcome(new WriteResult(memory, false, seq), null);
    }

    private static (Memory Memory, long Seq)? FindDuplicate(SqliteConnection c, string tenant, Memory memory, long now)
    {
        using var statement = c.Prepare(
            $"SELECT {MemoryColumns}, m.seq FROM memories m WHERE m.tenant = ?1 AND m.content_hash = ?2 " +
            "AND m.user_id IS ?3 AND m.agent_id IS ?4 AND m.session_id IS ?5 AND m.namespace IS ?6 " +
            "AND (m.expires_at IS NULL OR m.expires_at > ?7) ORDER BY m.rid LIMIT 1");
        statement.BindAll([tenant, memory.ContentHash, memory.UserId, memory.AgentId, memory.SessionId, memory.Namespace, now]);
        return statement.Step() ? (ReadMemory(statement), statement.GetInt64(MemoryColumnCount)) : null;
    }

    private static (Memory Memory, long Rid, long Seq)? FindLive(SqliteConnection c, string tenant, string id, long now)
    {
        using var statement = c.Prepare(
            $"SELECT {MemoryColumns}, m.rid, m.seq FROM memories m WHERE m.id = ?1 AND m.tenant = ?2 " +
            "AND (m.expires_at IS NULL OR m.expires_at > ?3)");
        statement.BindAll([id, tenant, now]);
        return statement.Step() ? (ReadMemory(statement), statement.GetInt64(MemoryColumnCount), statement.GetInt64(MemoryColumnCount + 1)) : null;
    }

    private static List<(Memory Memory, long Rid)> SelectRows(SqliteConnection c, SqliteFilterSql filter, int limit)
    {
        var rows = new List<(Memory, long)>();
        using var statement = c.Prepare($"SELECT {MemoryColumns}, m.rid FROM memories m WHERE {filter.Where} ORDER BY m.rid LIMIT {limit}");
        statement.BindAll(filter.Parameters.ToArray());
        while (statement.Step())
        {
            rows.Add((ReadMemory(statement), statement.GetInt64(MemoryColumnCount)));
        }
        return rows;
    }

    private long DeleteOne(SqliteConnection c, Caller caller, Memory memory, long rid, string historyEvent, long now)
    {
        var seq = AppendChange(c, caller.Tenant, memory.Id, ChangeRecord.Delete, now);
        c.ExecuteNonQuery("DELETE FROM memories WHERE rid = ?1", rid);
        DeleteVectors(c, caller.Tenant, memory.Id);
        AppendHistory(c, caller, memory.Id, seq, historyEvent, now, memory.Version, MemoryDiff.Snapshot(memory));
        return seq;
    }

    private static void InsertTags(SqliteConnection c, long rid, IReadOnlyList<string> tags)
    {
        foreach (var tag in tags)
        {
            c.ExecuteNonQuery("INSERT OR IGNORE INTO memory_tags(rid, tag) VALUES (?1, ?2)", rid, tag);
        }
    }

    private static void InsertEntities(SqliteConnection c, long rid, IReadOnlyList<string> entities)
    {
        foreach (var name in entities)
        {
            c.ExecuteNonQuery("INSERT OR IGNORE INTO memory_entities(rid, name_key) VALUES (?1, ?2)", rid, EntityNames.Key(name));
        }
    }

    private static long AppendChange(SqliteConnection c, string tenant, string entityId, string op, long now)
    {
        c.ExecuteNonQuery("INSERT INTO changelog(tenant, entity, entity_id, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            tenant, ChangeRecord.MemoryEntity, entityId, op, now);
        return c.LastInsertRowId;
    }

    private static void AppendHistory(SqliteConnection c, Caller caller, string memoryId, long seq, string historyEvent, long now, long version, JsonElement changes) =>
        c.ExecuteNonQuery(
            "INSERT INTO memory_history(tenant, memory_id, seq, event, actor, at, version, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            caller.Tenant, memoryId, seq, historyEvent, caller.Actor, now, version, changes.GetRawText());
}
