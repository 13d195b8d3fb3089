using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using Engram.Core.Storage.Transfer;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Export and import on PostgreSQL, with the SQLite store's semantics (see <see cref="IStoreTransfer"/>):
/// the export reads one REPEATABLE READ snapshot (<see cref="PostgresSnapshot"/>); an import writes a batch
/// in one transaction under the log lock, each record behind a savepoint so one that fails never takes
/// the others with it, each memory, key, entity and relation with a change-log entry so every instance's indexes
/// pick it up (links, conversations and extraction jobs are read from their tables).
/// </summary>
public sealed partial class PostgresMemoryStore : IStoreTransfer
{
    private static readonly Caller Importer = Caller.System("import");

    public async Task<ExportReader> OpenExportAsync(string? tenant, CancellationToken ct = default)
    {
        try
        {
            return new ExportReader(await PostgresSnapshot.OpenAsync(_db, ct).ConfigureAwait(false), tenant);
        }
        catch (NpgsqlException ex)
        {
            throw new StoreException($"the PostgreSQL store failed: {ex.Message}", ex);
        }
    }

    public Task<long> GetImportBaselineAsync(CancellationToken ct = default) =>
        ReadAsync(c => ScalarAsync<long>(c, "SELECT coalesce(max(rid), 0) FROM memories", ct), ct);

    public Task<string?> GetMetaAsync(string key, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            await using var command = Command(c, "SELECT value FROM store_meta WHERE key = $1").Text(key);
            return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        }, ct);

    public Task<IReadOnlyList<KeyValuePair<string, string>>> ListMetaAsync(string prefix, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<KeyValuePair<string, string>>>(async c =>
        {
            var rows = new List<KeyValuePair<string, string>>();
            await using var command = Command(c, "SELECT key, value FROM store_meta WHERE left(key, length($1)) = $1 ORDER BY key COLLATE \"C\"").Text(prefix);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                rows.Add(new(reader.GetString(0), reader.GetString(1)));
            }
            return rows;
        }, ct);

    public Task SetMetaAsync(string key, string? value, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await using var command = value is null
                ? Command(c, "DELETE FROM store_meta WHERE key = $1").Text(key)
                : Command(c, "INSERT INTO store_meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value").Text(key).Text(value);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, ct);

    public Task<IReadOnlyList<(ImportOutcome Outcome, Exception? Error)>> ImportAsync(IReadOnlyList<JsonElement> records, ImportRules rules,
        CancellationToken ct = default) =>
        LoggedAsync<IReadOnlyList<(ImportOutcome, Exception?)>>(async c =>
        {
            var results = new (ImportOutcome, Exception?)[records.Count];
            var refused = false;
            for (var i = 0; i < records.Count; i++)
            {
                if (refused)
                {
                    results[i] = (ImportOutcome.NotReached, null);
                    continue;
                }
                await ExecuteAsync(c, "SAVEPOINT record", ct).ConfigureAwait(false);
                try
                {
                    results[i] = (await ImportOneAsync(c, records[i], rules).ConfigureAwait(false), null);
                    await ExecuteAsync(c, "RELEASE SAVEPOINT record", ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is PostgresException { SqlState: not ("40001" or "40P01") } || ImportRecords.IsRecordError(ex))
                {
                    await ExecuteAsync(c, "ROLLBACK TO SAVEPOINT record", ct).ConfigureAwait(false);
                    results[i] = (ImportOutcome.Failed, ex is PostgresException pg ? new StoreException($"PostgreSQL refused the record: {pg.MessageText}", pg) : ex);
                    refused = rules.StopAtRefusal;
                }
            }
            return results;
        }, ct);

    private async Task<ImportOutcome> ImportOneAsync(NpgsqlConnection c, JsonElement record, ImportRules rules) =>
        ImportRecords.Kind(record) switch
        {
            ExportKinds.Memory => await ImportMemoryAsync(c, ImportRecords.Memory(record, rules.Validation, NowMs), rules.Baseline).ConfigureAwait(false),
            ExportKinds.KeyValue => await ImportKvAsync(c, ImportRecords.KeyValue(record, rules.Validation), rules.Exact).ConfigureAwait(false),
            ExportKinds.Entity => await ImportEntityAsync(c, ImportRecords.Entity(record)).ConfigureAwait(false),
            ExportKinds.Relation => await ImportRelationAsync(c, ImportRecords.Relation(record)).ConfigureAwait(false),
            ExportKinds.Link => await ImportLinkAsync(c, ImportRecords.Link(record)).ConfigureAwait(false),
            ExportKinds.Conversation => await ImportConversationAsync(c, ImportRecords.Conversation(record)).ConfigureAwait(false),
            ExportKinds.Vector => await ImportVectorAsync(c, ImportRecords.Vector(record)).ConfigureAwait(false),
            _ => await ImportJobAsync(c, ImportRecords.Job(record, NowMs)).ConfigureAwait(false),
        };

    private async Task<ImportOutcome> ImportMemoryAsync(NpgsqlConnection c, ImportedMemory m, long baseline)
    {
        await using (var exists = Command(c,
            "SELECT 1 FROM memories WHERE id = $1 UNION ALL SELECT 1 FROM memories WHERE tenant = $2 AND content_hash = $3 " +
            "AND user_id IS NOT DISTINCT FROM $4 AND agent_id IS NOT DISTINCT FROM $5 AND session_id IS NOT DISTINCT FROM $6 " +
            "AND namespace IS NOT DISTINCT FROM $7 AND (expires_at IS NULL OR expires_at > $8) AND rid <= $9 LIMIT 1")
            .Text(m.Id).Text(m.Tenant).Text(m.ContentHash).Text(m.UserId).Text(m.AgentId).Text(m.SessionId).Text(m.Namespace).Int(NowMs).Int(baseline))
        {
            if (await exists.ExecuteScalarAsync().ConfigureAwait(false) is not null)
            {
                return ImportOutcome.Skipped;
            }
        }
        var seq = await AppendChangeAsync(c, m.Tenant, ChangeRecord.MemoryEntity, m.Id, ChangeRecord.Upsert, NowMs).ConfigureAwait(false);
        long rid;
        await using (var insert = Command(c, InsertMemorySql)
            .Text(m.Id).Text(m.Tenant).Text(m.Content).Text(m.ContentHash).Text(m.Type).Text(m.Tier).Real(m.Importance).Real(m.Valence)
            .Text(m.TagsJson).Text(m.MetadataJson).Text(m.UserId).Text(m.AgentId).Text(m.SessionId).Text(m.Namespace).Text(m.Source)
            .Int(m.CreatedAt).Int(m.UpdatedAt).Int(m.LastAccessedAt).Int(m.AccessCount).Int(m.ExpiresAt).Int(m.ValidFrom).Int(m.ValidTo).Int(m.Version).Int(seq)
            .Text(m.EntitiesJson).Text(m.SupersededBy))
        {
            rid = (long)(await insert.ExecuteScalarAsync().ConfigureAwait(false))!;
        }
        await InsertTagsAsync(c, rid, m.Tags).ConfigureAwait(false);
        await InsertEntitiesAsync(c, rid, m.Entities).ConfigureAwait(false);
        foreach (var entry in m.History)
        {
            await using var history = Command(c,
                "INSERT INTO memory_history(tenant, memory_id, seq, event, actor, at, version, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .Text(m.Tenant).Text(m.Id).Int(seq).Text(entry.Event).Text(entry.Actor).Int(entry.At).Int(entry.Version).Text(entry.ChangesJson);
            await history.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        return ImportOutcome.Imported;
    }

    private async Task<ImportOutcome> ImportKvAsync(NpgsqlConnection c, ImportedKeyValue r, bool exact)
    {
        var now = NowMs;
        var (current, head) = await CurrentKvAsync(c, r.Tenant, r.Key, withHead: true).ConfigureAwait(false);
        if (current is not null && (exact || current.IsLiveAt(now)))
        {
            return ImportOutcome.Skipped;
        }
        var seq = await AppendChangeAsync(c, r.Tenant, ChangeRecord.KeyValueEntity, r.Key, ChangeRecord.Upsert, now).ConfigureAwait(false);
        // The history rows extend the key's chain (after a deleted or expired key's own, if any); the entry points at the newest.
        var previous = head;
        foreach (var entry in r.History)
        {
            await using var history = Command(c,
                "INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING hid")
                .Text(r.Tenant).Text(r.Key).Int(seq).Text(entry.Event).Text(entry.Actor).Int(entry.At).Int(entry.Version).Text(entry.ValueJson).Int(entry.ExpiresAt)
                .Int(previous);
            previous = (long)(await history.ExecuteScalarAsync().ConfigureAwait(false))!;
        }
        await using var command = Command(c,
            "WITH undeleted AS (DELETE FROM kv_deleted WHERE tenant = $1 AND key = $2) " +
            "INSERT INTO kv_entries(tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) " +
            "ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version, seq = excluded.seq, " +
            "created_at = excluded.created_at, updated_at = excluded.updated_at, last_hid = excluded.last_hid")
            .Text(r.Tenant).Text(r.Key).Text(r.ValueJson).Int(r.ExpiresAt).Int(r.Version).Int(seq).Int(r.CreatedAt).Int(r.UpdatedAt).Int(previous);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        return ImportOutcome.Imported;
    }

    private async Task<ImportOutcome> ImportEntityAsync(NpgsqlConnection c, ImportedEntity r)
    {
        if (await EntityExistsAsync(c, r.Tenant, r.Name).ConfigureAwait(false))
        {
            return ImportOutcome.Skipped;
        }
        var now = NowMs;
        var seq = await AppendChangeAsync(c, r.Tenant, GraphChangeKinds.Entity, r.Name, ChangeRecord.Upsert, now).ConfigureAwait(false);
        await using (var insert = Command(c, "INSERT INTO graph_entities(tenant, name, entity_type, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .Text(r.Tenant).Text(r.Name).Text(r.Type).Int(r.CreatedAt).Int(r.UpdatedAt))
        {
            await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        foreach (var (observation, createdAt) in r.Observations)
        {
            await InsertObservationAsync(c, r.Tenant, r.Name, observation, createdAt).ConfigureAwait(false);
        }
        await AppendGraphHistoryAsync(c, Importer with { Tenant = r.Tenant }, seq, GraphEvents.EntityCreated, now, r.Name, null,
            new { entity_type = r.Type, observations = r.Observations.Select(o => o.Observation) }).ConfigureAwait(false);
        return ImportOutcome.Imported;
    }

    private async Task<ImportOutcome> ImportRelationAsync(NpgsqlConnection c, ImportedRelation r)
    {
        var relation = r.Relation;
        await using (var exists = Command(c, "SELECT 1 FROM graph_relations WHERE tenant = $1 AND from_name = $2 AND to_name = $3 AND relation_type = $4")
            .Text(r.Tenant).Text(relation.From).Text(relation.To).Text(relation.RelationType))
        {
            if (await exists.ExecuteScalarAsync().ConfigureAwait(false) is not null)
            {
                return ImportOutcome.Skipped;
            }
        }
        foreach (var (field, name) in new[] { ("from", relation.From), ("to", relation.To) })
        {
            if (!await EntityExistsAsync(c, r.Tenant, name).ConfigureAwait(false))
            {
                throw new ValidationException(field, $"no entity named '{name}' in tenant '{r.Tenant}' (entities come before relations in an export)");
            }
        }
        var now = NowMs;
        var seq = await AppendChangeAsync(c, r.Tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Upsert, now).ConfigureAwait(false);
        await using (var insert = Command(c,
            "INSERT INTO graph_relations(tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .Text(r.Tenant).Text(relation.From).Text(relation.To).Text(relation.RelationType).Real(relation.Weight).Int(ToMs(relation.ValidFrom))
            .Int(ToMs(relation.ValidTo)).Int(r.CreatedAt))
        {
            await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        await AppendGraphHistoryAsync(c, Importer with { Tenant = r.Tenant }, seq, GraphEvents.RelationCreated, now, relation.From, relation.To,
            relation with { CreatedAt = FromMs(r.CreatedAt) }).ConfigureAwait(false);
        return ImportOutcome.Imported;
    }

    /// <summary>Links are read from their table only (never through the change log), so they need no change-log entry.</summary>
    private static async Task<ImportOutcome> ImportLinkAsync(NpgsqlConnection c, ImportedLink r)
    {
        await using var insert = Command(c,
            "INSERT INTO memory_links(tenant, memory_id, kind, target_id, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
            .Text(r.Tenant).Text(r.MemoryId).Text(r.Kind).Text(r.TargetId).Int(r.CreatedAt);
        return await insert.ExecuteNonQueryAsync().ConfigureAwait(false) > 0 ? ImportOutcome.Imported : ImportOutcome.Skipped;
    }

    /// <summary>As SQLite's: the vectors of a memory version that is in the store, once.</summary>
    private static async Task<ImportOutcome> ImportVectorAsync(NpgsqlConnection c, MemoryVectors v)
    {
        await using var insert = Command(c,
            "INSERT INTO memory_vectors(tenant, memory_id, version, model, dims, count, vectors) " +
            "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM memories WHERE tenant = $1 AND id = $2 AND version = $3) " +
            "ON CONFLICT (tenant, memory_id, model, version) DO NOTHING")
            .Text(v.Key.Tenant).Text(v.Key.MemoryId).Int(v.Key.Version).Text(v.Model).Int(v.Dimensions).Int(v.Count).Bytes(SqliteMemoryStore.Encode(v.Values));
        return await insert.ExecuteNonQueryAsync().ConfigureAwait(false) > 0 ? ImportOutcome.Imported : ImportOutcome.Skipped;
    }

    private static async Task<ImportOutcome> ImportConversationAsync(NpgsqlConnection c, ImportedConversation r)
    {
        await using (var insert = Command(c, "INSERT INTO conversations(id, tenant, body, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
            .Text(r.Id).Text(r.Tenant).Text(r.Body).Int(r.CreatedAt))
        {
            if (await insert.ExecuteNonQueryAsync().ConfigureAwait(false) == 0)
            {
                return ImportOutcome.Skipped;
            }
        }
        foreach (var entry in r.History)
        {
            await using var history = Command(c,
                "INSERT INTO conversation_history(tenant, conversation_id, event, actor, at, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                .Text(r.Tenant).Text(r.Id).Text(entry.Event).Text(entry.Actor).Int(entry.At).Text(entry.Detail);
            await history.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        return ImportOutcome.Imported;
    }

    /// <summary>Workers find a queued job by polling the table: it needs no change-log entry either.</summary>
    private static async Task<ImportOutcome> ImportJobAsync(NpgsqlConnection c, ImportedJob r)
    {
        await using (var exists = Command(c, "SELECT 1 FROM extraction_jobs WHERE id = $1").Text(r.Id))
        {
            if (await exists.ExecuteScalarAsync().ConfigureAwait(false) is not null)
            {
                return ImportOutcome.Skipped;
            }
        }
        await using (var conversation = Command(c, "SELECT 1 FROM conversations WHERE id = $1 AND tenant = $2").Text(r.ConversationId).Text(r.Tenant))
        {
            if (await conversation.ExecuteScalarAsync().ConfigureAwait(false) is null)
            {
                throw r.MissingConversation();
            }
        }
        await using var insert = Command(c,
            "INSERT INTO extraction_jobs(id, tenant, conversation_id, actor, status, attempts, next_attempt_at, lease_owner, lease_until, plan, applied, " +
            "memory_ids, error, model, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $9, $10, $11, $12, $13, $14)")
            .Text(r.Id).Text(r.Tenant).Text(r.ConversationId).Text(r.Actor).Text(r.Status).Int(r.Attempts).Int(r.NextAttemptAt).Text(r.PlanJson)
            .Text(r.AppliedJson).Text(r.MemoryIdsJson).Text(r.Error).Text(r.Model).Int(r.CreatedAt).Int(r.UpdatedAt);
        await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
        return ImportOutcome.Imported;
    }
}
