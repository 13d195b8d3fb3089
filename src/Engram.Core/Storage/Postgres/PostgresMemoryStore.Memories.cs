using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>Memories: writes (with history and change log in one transaction) and reads, as the SQLite store does them.</summary>
public sealed partial class PostgresMemoryStore
{
    /// <summary>How many rows one transaction of a bulk delete or the sweeper removes, so other writes interleave.</summary>
    private const int DeleteChunk = 500;

    private const string InsertMemorySql =
        "INSERT INTO memories (id, tenant, content, content_hash, type, tier, importance, valence, tags, metadata, " +
        "user_id, agent_id, session_id, namespace, source, created_at, updated_at, last_accessed_at, access_count, " +
        "expires_at, valid_from, valid_to, version, seq, entities, superseded_by) " +
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26) RETURNING rid";

    private const string UpdateMemorySql =
        "UPDATE memories SET content = $3, content_hash = $4, type = $5, tier = $6, importance = $7, valence = $8, " +
        "tags = $9, metadata = $10, user_id = $11, agent_id = $12, session_id = $13, namespace = $14, source = $15, " +
        "created_at = $16, updated_at = $17, last_accessed_at = $18, access_count = $19, expires_at = $20, " +
        "valid_from = $21, valid_to = $22, version = $23, seq = $24, entities = $25, superseded_by = $26 WHERE id = $1 AND tenant = $2";

    public Task<WriteResult> CreateAsync(Caller caller, Memory memory, DuplicatePolicy policy, CancellationToken ct = default) =>
        LoggedAsync(async c =>
        {
            var outcome = await CreateOneAsync(c, caller, memory, policy, NowMs).ConfigureAwait(false);
            return outcome.Rejected is { } existing
                ? throw new ConflictException($"a memory with the same content already exists in this scope: {existing}", existing)
                : outcome.Result!;
        }, ct);

    /// <summary>
    /// A batch in four round trips instead of five statements per item: the duplicate candidates of every item
    /// are read at once, then the log head, and the batch is walked in memory in order (an item duplicates an earlier one of the
    /// same batch as it would one by one), then the inserts go as one <see cref="NpgsqlBatch"/> and the tags,
    /// entities, history and change log as another. The log lock is held throughout, so the seqs counted here
    /// are the ones the log gets, and no other writer can add a duplicate in between.
    /// </summary>
    public Task<IReadOnlyList<BatchItemResult>> CreateManyAsync(Caller caller, IReadOnlyList<Memory> memories, DuplicatePolicy policy, CancellationToken ct = default) =>
        LoggedAsync<IReadOnlyList<BatchItemResult>>(async c =>
        {
            var now = NowMs;
            var results = new BatchItemResult[memories.Count];
            var earlier = policy == DuplicatePolicy.Allow ? null : await FindDuplicatesAsync(c, caller.Tenant, memories, now).ConfigureAwait(false);
            var seq = await ScalarAsync<long>(c, "SELECT current_setting('engram.log_seq')::bigint", CancellationToken.None).ConfigureAwait(false);
            var created = new List<(Memory Memory, long Seq)>(memories.Count);
            for (var i = 0; i < memories.Count; i++)
            {
                var memory = memories[i];
                var scope = DuplicateScope.Of(memory);
                if (earlier is not null && earlier.TryGetValue(scope, out var existing))
                {
                    results[i] = policy == DuplicatePolicy.Reject
                        ? new BatchItemResult(BatchItemResult.ErrorStatus, existing.Id, null, $"duplicate of {existing.Id}")
                        : new BatchItemResult(BatchItemResult.DuplicateStatus, existing.Id, existing.Seq, null);
                    continue;
                }
                created.Add((memory, ++seq));
                results[i] = new BatchItemResult(BatchItemResult.Created, memory.Id, seq, null);
                // One already expired is no duplicate of anything later, as the query below would not find it.
                if (earlier is not null && (memory.ExpiresAt is not { } expires || expires.ToUnixTimeMilliseconds() > now))
                {
                    earlier.TryAdd(scope, (memory.Id, seq));
                }
            }
            if (created.Count > 0)
            {
                await InsertManyAsync(c, caller, created, now).ConfigureAwait(false);
            }
            return results;
        }, ct);

    /// <summary>What makes two memories duplicates: the same content in the same tenant-wide scope (see <see cref="FindDuplicateAsync"/>).</summary>
    private readonly record struct DuplicateScope(string Hash, string? UserId, string? AgentId, string? SessionId, string? Namespace)
    {
        public static DuplicateScope Of(Memory m) => new(m.ContentHash, m.UserId, m.AgentId, m.SessionId, m.Namespace);
    }

    /// <summary>The live memories a batch's items could duplicate: per scope the first stored (lowest rid), as <see cref="FindDuplicateAsync"/> picks.</summary>
    private static async Task<Dictionary<DuplicateScope, (string Id, long Seq)>> FindDuplicatesAsync(NpgsqlConnection c, string tenant, IReadOnlyList<Memory> memories,
        long now)
    {
        var found = new Dictionary<DuplicateScope, (string Id, long Seq)>();
        await using var command = Command(c,
            "SELECT m.id, m.seq, m.content_hash, m.user_id, m.agent_id, m.session_id, m.namespace FROM memories m " +
            "WHERE m.tenant = $1 AND m.content_hash = ANY($2) AND (m.expires_at IS NULL OR m.expires_at > $3) ORDER BY m.rid")
            .Text(tenant).TextArray([.. memories.Select(m => m.ContentHash).Distinct(StringComparer.Ordinal)]).Int(now);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            found.TryAdd(new DuplicateScope(reader.GetString(2), reader.TextOrNull(3), reader.TextOrNull(4), reader.TextOrNull(5), reader.TextOrNull(6)),
                (reader.GetString(0), reader.GetInt64(1)));
        }
        return found;
    }

    /// <summary>The rows of new memories: memories (for their rids) in one round trip, then tags, entities, history and the change log in one more.</summary>
    private static async Task InsertManyAsync(NpgsqlConnection c, Caller caller, List<(Memory Memory, long Seq)> created, long now)
    {
        var rids = new long[created.Count];
        await using (var inserts = new NpgsqlBatch(c))
        {
            foreach (var (memory, seq) in created)
            {
                inserts.BatchCommands.Add(ForBatch(BindMemory(new NpgsqlCommand(InsertMemorySql), caller.Tenant, memory, seq)));
            }
            await using var reader = await inserts.ExecuteReaderAsync().ConfigureAwait(false);
            for (var i = 0; i < rids.Length; i++)
            {
                if (i > 0)
                {
                    await reader.NextResultAsync().ConfigureAwait(false);
                }
                await reader.ReadAsync().ConfigureAwait(false);
                rids[i] = reader.GetInt64(0);
            }
        }
        await using var rest = new NpgsqlBatch(c);
        AddChangeAppends(rest, caller.Tenant, ChangeRecord.MemoryEntity, [.. created.Select(x => (x.Memory.Id, x.Seq))], ChangeRecord.Upsert, now);
        for (var i = 0; i < created.Count; i++)
        {
            var (memory, seq) = created[i];
            if (TagsCommand(rids[i], memory.Tags) is { } tags)
            {
                rest.BatchCommands.Add(ForBatch(tags));
            }
            if (EntitiesCommand(rids[i], memory.Entities) is { } entities)
            {
                rest.BatchCommands.Add(ForBatch(entities));
            }
            rest.BatchCommands.Add(ForBatch(HistoryCommand(caller, memory.Id, seq, HistoryEvents.Created, memory.UpdatedAt.ToUnixTimeMilliseconds(), memory.Version,
                MemoryDiff.Snapshot(memory))));
        }
        await rest.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public Task<WriteResult> UpdateAsync(Caller caller, string id, long? expectedVersion, Func<Memory, Memory> apply, CancellationToken ct = default) =>
        LoggedAsync(async c =>
        {
            var now = NowMs;
            var (current, rid, currentSeq) = await FindLiveAsync(c, caller.Tenant, id, now).ConfigureAwait(false)
                ?? throw new NotFoundException($"no memory with id '{id}'");
            StoreRows.CheckVersion(id, current, expectedVersion);
            var updated = apply(current);
            var changes = MemoryDiff.Changes(current, updated);
            if (changes.EnumerateObject().Any() is false)
            {
                return new WriteResult(current, false, currentSeq);
            }
            updated = updated with { Version = current.NextVersion() };
            var seq = await AppendChangeAsync(c, caller.Tenant, ChangeRecord.MemoryEntity, id, ChangeRecord.Upsert, now).ConfigureAwait(false);
            await using (var command = BindMemory(Command(c, UpdateMemorySql), caller.Tenant, updated, seq))
            {
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            if (!current.Tags.SequenceEqual(updated.Tags, StringComparer.Ordinal))
            {
                await using var delete = Command(c, "DELETE FROM memory_tags WHERE rid = $1").Int(rid);
                await delete.ExecuteNonQueryAsync().ConfigureAwait(false);
                await InsertTagsAsync(c, rid, updated.Tags).ConfigureAwait(false);
            }
            if (!current.Entities.SequenceEqual(updated.Entities, StringComparer.Ordinal))
            {
                await using var delete = Command(c, "DELETE FROM memory_entities WHERE rid = $1").Int(rid);
                await delete.ExecuteNonQueryAsync().ConfigureAwait(false);
                await InsertEntitiesAsync(c, rid, updated.Entities).ConfigureAwait(false);
            }
            await CarryVectorsAsync(c, caller.Tenant, id, !string.Equals(current.Content, updated.Content, StringComparison.Ordinal), updated.Version)
                .ConfigureAwait(false);
            await AppendHistoryAsync(c, caller, id, seq, HistoryEvents.Updated, updated.UpdatedAt.ToUnixTimeMilliseconds(), updated.Version, changes)
                .ConfigureAwait(false);
            return new WriteResult(updated, false, seq);
        }, ct);

    public Task<long?> DeleteAsync(Caller caller, string id, long? expectedVersion = null, CancellationToken ct = default) =>
        LoggedAsync<long?>(async c =>
        {
            var now = NowMs;
            if (await FindLiveAsync(c, caller.Tenant, id, now).ConfigureAwait(false) is not { } found)
            {
                return null;
            }
            StoreRows.CheckVersion(id, found.Memory, expectedVersion);
            return await DeleteOneAsync(c, caller, found.Memory, found.Rid, HistoryEvents.Deleted, now).ConfigureAwait(false);
        }, ct);

    public async Task<BulkDeleteResult> DeleteManyAsync(Caller caller, MemoryFilter filter, CancellationToken ct = default)
    {
        var total = 0;
        long? lastSeq = null;
        while (true)
        {
            var (deleted, seq) = await LoggedAsync(async c =>
            {
                var now = NowMs;
                var doomed = await SelectRowsAsync(c, PostgresFilterSql.Build(caller.Tenant, filter, now), DeleteChunk).ConfigureAwait(false);
                long? last = null;
                foreach (var (memory, rid, _) in doomed)
                {
                    last = await DeleteOneAsync(c, caller, memory, rid, HistoryEvents.Deleted, now).ConfigureAwait(false);
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

    public async Task<int> DeleteExpiredAsync(int max, CancellationToken ct = default)
    {
        var total = 0;
        while (total < max)
        {
            var chunk = Math.Min(DeleteChunk, max - total);
            var deleted = await LoggedAsync(async c =>
            {
                var now = NowMs;
                var expired = new List<(Memory Memory, long Rid, string Tenant)>();
                await using (var command = Command(c,
                    $"SELECT {MemoryColumns}, m.rid, m.tenant FROM memories m WHERE m.expires_at IS NOT NULL AND m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2")
                    .Int(now).Int(chunk))
                await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
                {
                    while (await reader.ReadAsync().ConfigureAwait(false))
                    {
                        expired.Add((ReadMemory(reader), reader.GetInt64(MemoryColumnCount), reader.GetString(MemoryColumnCount + 1)));
                    }
                }
                foreach (var (memory, rid, tenant) in expired)
                {
                    await DeleteOneAsync(c, Caller.System("ttl-sweeper", tenant), memory, rid, HistoryEvents.Expired, now).ConfigureAwait(false);
                }
                return expired.Count;
            }, ct).ConfigureAwait(false);
            total += deleted;
            if (deleted < chunk)
            {
                break;
            }
        }
        return total;
    }

    public Task RecordAccessAsync(string tenant, IReadOnlyList<(string Id, int Count, DateTimeOffset At)> accesses, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            // In id order, so two instances recording the same memories lock them in the same order.
            foreach (var (id, count, at) in accesses.OrderBy(a => a.Id, StringComparer.Ordinal))
            {
                await using var command = Command(c,
                    "UPDATE memories SET access_count = access_count + $1, last_accessed_at = GREATEST(COALESCE(last_accessed_at, 0), $2) WHERE id = $3 AND tenant = $4")
                    .Int(count).Int(at.ToUnixTimeMilliseconds()).Text(id).Text(tenant);
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            return accesses.Count;
        }, WriteDurability.Relaxed, ct);

    public Task<Memory?> GetAsync(Caller caller, string id, CancellationToken ct = default) =>
        ReadAsync(async c => (await FindLiveAsync(c, caller.Tenant, id, NowMs).ConfigureAwait(false))?.Memory, ct);

    public Task<MemoryPage> ListAsync(Caller caller, MemoryFilter filter, int limit, string? cursor, CancellationToken ct = default)
    {
        var afterId = cursor is null ? null : DecodeCursor(cursor);
        return ReadAsync(async c =>
        {
            var sql = PostgresFilterSql.Build(caller.Tenant, filter, NowMs);
            if (afterId is not null)
            {
                sql.Append($"m.id < {sql.Param(afterId)}");
            }
            var items = new List<Memory>(Math.Min(limit, 256));
            await using var command = sql.Bind(Command(c, $"SELECT {MemoryColumns} FROM memories m WHERE {sql.Where} ORDER BY m.id DESC LIMIT {limit + 1}"));
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                items.Add(ReadMemory(reader));
            }
            string? next = null;
            if (items.Count > limit)
            {
                items.RemoveAt(items.Count - 1);
                next = EncodeCursor(items[^1].Id);
            }
            return new MemoryPage(items, next);
        }, ct);
    }

    public Task<IReadOnlyList<HistoryEntry>> GetHistoryAsync(Caller caller, string id, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<HistoryEntry>>(async c =>
        {
            var entries = new List<HistoryEntry>();
            await using var command = Command(c,
                "SELECT seq, event, actor, at, version, changes FROM memory_history WHERE tenant = $1 AND memory_id = $2 ORDER BY hid").Text(caller.Tenant).Text(id);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                entries.Add(ReadHistory(new PostgresRow(reader), id));
            }
            return entries;
        }, ct);

    public Task<MemoryCounts> GetStatsAsync(Caller caller, MemoryFilter? filter = null, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            if (filter is null || filter == MemoryFilter.None)
            {
                return await CountedStatsAsync(c, caller.Tenant, NowMs, ct).ConfigureAwait(false);
            }
            var byType = await CountByAsync(c, "type", PostgresFilterSql.Build(caller.Tenant, filter, NowMs), ct).ConfigureAwait(false);
            var byTier = await CountByAsync(c, "tier", PostgresFilterSql.Build(caller.Tenant, filter, NowMs), ct).ConfigureAwait(false);
            return new MemoryCounts(byType.Values.Sum(), byType, byTier);
        }, ct);

    public Task<IReadOnlyList<ChangeRecord>> ReadChangesAsync(long afterSeq, int max, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<ChangeRecord>>(async c =>
        {
            await using var command = Command(c, "SELECT seq, tenant, entity, entity_id, op, at FROM changelog WHERE seq > $1 ORDER BY seq LIMIT $2")
                .Int(afterSeq).Int(max);
            return await ReadChangesAsync(command, ct).ConfigureAwait(false);
        }, ct);

    public Task<ChangePage> ReadChangesAsync(long afterSeq, int max, string entity, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            // log_head's committed value first: every entry up to it is committed (seqs are given in
            // commit order), so a page that stops short of max has read the log up to it.
            var newest = await ScalarAsync<long>(c, "SELECT seq FROM log_head", ct).ConfigureAwait(false);
            await using var command = Command(c,
                "SELECT seq, tenant, entity, entity_id, op, at FROM changelog WHERE seq > $1 AND seq <= $2 AND entity = $3 ORDER BY seq LIMIT $4")
                .Int(afterSeq).Int(newest).Text(entity).Int(max);
            var changes = await ReadChangesAsync(command, ct).ConfigureAwait(false);
            return new ChangePage(changes, changes.Count == max ? changes[^1].Seq : Math.Max(afterSeq, newest));
        }, ct);

    private static async Task<List<ChangeRecord>> ReadChangesAsync(NpgsqlCommand command, CancellationToken ct)
    {
        var changes = new List<ChangeRecord>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            changes.Add(ReadChange(new PostgresRow(reader)));
        }
        return changes;
    }

    public Task<IReadOnlyList<TenantMemory>> GetForIndexAsync(IReadOnlyList<string> ids, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<TenantMemory>>(async c =>
        {
            var found = new Dictionary<string, TenantMemory>(StringComparer.Ordinal);
            await using var command = Command(c,
                $"SELECT {MemoryColumns}, m.tenant FROM memories m WHERE m.id = ANY($1) AND (m.expires_at IS NULL OR m.expires_at > $2)")
                .TextArray([.. ids]).Int(NowMs);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var memory = ReadMemory(reader);
                found[memory.Id] = new TenantMemory(reader.GetString(MemoryColumnCount), memory);
            }
            return [.. ids.Where(found.ContainsKey).Select(id => found[id])];
        }, ct);

    public Task<IReadOnlyList<string>> ListIdsAsync(Caller caller, MemoryFilter filter, int max, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<string>>(async c =>
        {
            var sql = PostgresFilterSql.Build(caller.Tenant, filter, NowMs);
            var ids = new List<string>();
            await using var command = sql.Bind(Command(c, $"SELECT m.id FROM memories m WHERE {sql.Where} LIMIT {max}"));
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                ids.Add(reader.GetString(0));
            }
            return ids;
        }, ct);

    public Task<IReadOnlyList<Memory>> GetManyAsync(Caller caller, IReadOnlyList<string> ids, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<Memory>>(async c =>
        {
            var found = new Dictionary<string, Memory>(StringComparer.Ordinal);
            await using var command = Command(c,
                $"SELECT {MemoryColumns} FROM memories m WHERE m.id = ANY($1) AND m.tenant = $2 AND (m.expires_at IS NULL OR m.expires_at > $3)")
                .TextArray([.. ids]).Text(caller.Tenant).Int(NowMs);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var memory = ReadMemory(reader);
                found[memory.Id] = memory;
            }
            return [.. ids.Where(found.ContainsKey).Select(id => found[id])];
        }, ct);

    private readonly record struct CreateOutcome(WriteResult? Result, string? Rejected);

    private static async Task<CreateOutcome> CreateOneAsync(NpgsqlConnection c, Caller caller, Memory memory, DuplicatePolicy policy, long now)
    {
        // The log lock is held (LoggedAsync): no other instance can insert the same content between this check and the insert.
        if (policy != DuplicatePolicy.Allow && await FindDuplicateAsync(c, caller.Tenant, memory, now).ConfigureAwait(false) is { } existing)
        {
            return policy == DuplicatePolicy.Reject
                ? new CreateOutcome(null, existing.Memory.Id)
                : new CreateOutcome(new WriteResult(existing.Memory, true, existing.Seq), null);
        }
        var seq = await AppendChangeAsync(c, caller.Tenant, ChangeRecord.MemoryEntity, memory.Id, ChangeRecord.Upsert, now).ConfigureAwait(false);
        long rid;
        await using (var command = BindMemory(Command(c, InsertMemorySql), caller.Tenant, memory, seq))
        {
            rid = (long)(await command.ExecuteScalarAsync().ConfigureAwait(false))!;
        }
        await InsertTagsAsync(c, rid, memory.Tags).ConfigureAwait(false);
        await InsertEntitiesAsync(c, rid, memory.Entities).ConfigureAwait(false);
        await AppendHistoryAsync(c, caller, memory.Id, seq, HistoryEvents.Created, memory.UpdatedAt.ToUnixTimeMilliseconds(), memory.Version,
            MemoryDiff.Snapshot(memory)).ConfigureAwait(false);
        return new CreateOutcome(new WriteResult(memory, false, seq), null);
    }

    private static async Task<(Memory Memory, long Seq)?> FindDuplicateAsync(NpgsqlConnection c, string tenant, Memory memory, long now)
    {
        await using var command = Command(c,
            $"SELECT {MemoryColumns}, m.seq FROM memories m WHERE m.tenant = $1 AND m.content_hash = $2 " +
            "AND m.user_id IS NOT DISTINCT FROM $3 AND m.agent_id IS NOT DISTINCT FROM $4 AND m.session_id IS NOT DISTINCT FROM $5 " +
            "AND m.namespace IS NOT DISTINCT FROM $6 AND (m.expires_at IS NULL OR m.expires_at > $7) ORDER BY m.rid LIMIT 1")
            .Text(tenant).Text(memory.ContentHash).Text(memory.UserId).Text(memory.AgentId).Text(memory.SessionId).Text(memory.Namespace).Int(now);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        return await reader.ReadAsync().ConfigureAwait(false) ? (ReadMemory(reader), reader.GetInt64(MemoryColumnCount)) : null;
    }

    private static async Task<(Memory Memory, long Rid, long Seq)?> FindLiveAsync(NpgsqlConnection c, string tenant, string id, long now)
    {
        await using var command = Command(c,
            $"SELECT {MemoryColumns}, m.rid, m.seq FROM memories m WHERE m.id = $1 AND m.tenant = $2 AND (m.expires_at IS NULL OR m.expires_at > $3)")
            .Text(id).Text(tenant).Int(now);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        return await reader.ReadAsync().ConfigureAwait(false)
            ? (ReadMemory(reader), reader.GetInt64(MemoryColumnCount), reader.GetInt64(MemoryColumnCount + 1))
            : null;
    }

    private static async Task<List<(Memory Memory, long Rid, string Tenant)>> SelectRowsAsync(NpgsqlConnection c, PostgresFilterSql filter, int limit)
    {
        var rows = new List<(Memory, long, string)>();
        await using var command = filter.Bind(Command(c, $"SELECT {MemoryColumns}, m.rid, m.tenant FROM memories m WHERE {filter.Where} ORDER BY m.rid LIMIT {limit}"));
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            rows.Add((ReadMemory(reader), reader.GetInt64(MemoryColumnCount), reader.GetString(MemoryColumnCount + 1)));
        }
        return rows;
    }

    private static async Task<long> DeleteOneAsync(NpgsqlConnection c, Caller caller, Memory memory, long rid, string historyEvent, long now)
    {
        var seq = await AppendChangeAsync(c, caller.Tenant, ChangeRecord.MemoryEntity, memory.Id, ChangeRecord.Delete, now).ConfigureAwait(false);
        await using (var command = Command(c, "DELETE FROM memories WHERE rid = $1").Int(rid))
        {
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        await using (var command = Command(c, "DELETE FROM memory_vectors WHERE tenant = $1 AND memory_id = $2").Text(caller.Tenant).Text(memory.Id))
        {
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        await AppendHistoryAsync(c, caller, memory.Id, seq, historyEvent, now, memory.Version, MemoryDiff.Snapshot(memory)).ConfigureAwait(false);
        return seq;
    }

    private static async Task InsertTagsAsync(NpgsqlConnection c, long rid, IReadOnlyList<string> tags)
    {
        if (TagsCommand(rid, tags) is { } command)
        {
            command.Connection = c;
            await using (command)
            {
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
        }
    }

    private static NpgsqlCommand? TagsCommand(long rid, IReadOnlyList<string> tags) =>
        tags.Count == 0
            ? null
            : new NpgsqlCommand("INSERT INTO memory_tags(rid, tag) SELECT $1, unnest($2) ON CONFLICT DO NOTHING")
                .Int(rid).TextArray([.. tags.Distinct(StringComparer.Ordinal)]);

    private static async Task InsertEntitiesAsync(NpgsqlConnection c, long rid, IReadOnlyList<string> entities)
    {
        if (EntitiesCommand(rid, entities) is { } command)
        {
            command.Connection = c;
            await using (command)
            {
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
        }
    }

    private static NpgsqlCommand? EntitiesCommand(long rid, IReadOnlyList<string> entities) =>
        entities.Count == 0
            ? null
            : new NpgsqlCommand("INSERT INTO memory_entities(rid, name_key) SELECT $1, unnest($2) ON CONFLICT DO NOTHING")
                .Int(rid).TextArray([.. entities.Select(EntityNames.Key).Distinct(StringComparer.Ordinal)]);

    private static async Task AppendHistoryAsync(NpgsqlConnection c, Caller caller, string memoryId, long seq, string historyEvent, long now, long version,
        JsonElement changes)
    {
        await using var command = HistoryCommand(caller, memoryId, seq, historyEvent, now, version, changes);
        command.Connection = c;
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private static NpgsqlCommand HistoryCommand(Caller caller, string memoryId, long seq, string historyEvent, long now, long version, JsonElement changes) =>
        new NpgsqlCommand(
            "INSERT INTO memory_history(tenant, memory_id, seq, event, actor, at, version, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .Text(caller.Tenant).Text(memoryId).Int(seq).Text(historyEvent).Text(caller.Actor).Int(now).Int(version).Text(changes.GetRawText());

    private static Memory ReadMemory(NpgsqlDataReader row) => StoreRows.ReadMemory(new PostgresRow(row));

    private static NpgsqlCommand BindMemory(NpgsqlCommand command, string tenant, Memory m, long seq) =>
        command.Text(m.Id).Text(tenant).Text(m.Content).Text(m.ContentHash).Text(m.Type).Text(m.Tier.ToWire()).Real(m.Importance).Real(m.Valence)
            .Text(JsonSerializer.Serialize(m.Tags, EngramJson.Options)).Text(m.Metadata.GetRawText())
            .Text(m.UserId).Text(m.AgentId).Text(m.SessionId).Text(m.Namespace).Text(m.Source)
            .Int(m.CreatedAt.ToUnixTimeMilliseconds()).Int(m.UpdatedAt.ToUnixTimeMilliseconds()).Int(ToMs(m.LastAccessedAt)).Int(m.AccessCount)
            .Int(ToMs(m.ExpiresAt)).Int(ToMs(m.ValidFrom)).Int(ToMs(m.ValidTo)).Int(m.Version).Int(seq)
            .Text(JsonSerializer.Serialize(m.Entities, EngramJson.Options)).Text(m.SupersededBy);

    private static async Task<Dictionary<string, long>> CountByAsync(NpgsqlConnection c, string column, PostgresFilterSql filter, CancellationToken ct)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var command = filter.Bind(Command(c,
            $"SELECT m.{column}, COUNT(*) FROM memories m WHERE {filter.Where} GROUP BY m.{column} ORDER BY m.{column}"));
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }
        return counts;
    }

}
