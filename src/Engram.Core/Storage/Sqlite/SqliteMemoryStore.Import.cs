using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.KeyValue;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage.Transfer;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Export and import (see <see cref="StoreExport"/>, <see cref="StoreImport"/>). An export reads a
/// snapshot on its own connection; an import writes each record as it was (ids, versions, times and
/// history kept), through the writer and with a change-log entry per memory, key, entity and relation so
/// indexes and other instances pick it up (links, conversations and extraction jobs are read from their tables). A record already in the store (same id or key, or the same content in the
/// same scope) is skipped.
/// </summary>
public sealed partial class SqliteMemoryStore : IStoreTransfer
{
    private static readonly Caller Importer = Caller.System("import");

    /// <summary>
    /// Opens a consistent snapshot of the store for an export (<paramref name="tenant"/> null: every
    /// tenant; else the tenant with its partitions). Key-value states written behind are folded into their table
    /// first, so the snapshot holds them.
    /// </summary>
    public async Task<ExportReader> OpenExportAsync(string? tenant, CancellationToken ct = default)
    {
        if (_kvHot.HasUnflushed || _journal is { Pending: > 0 })
        {
            await _writer.WriteAsync(c =>
            {
                _kvHot.Flush(c, slot => tenant is null || ScopeGuard.BelongsTo(slot.Tenant, tenant));
                return 0;
            }, WriteDurability.Relaxed, ct).ConfigureAwait(false);
        }
        return new ExportReader(new SqliteSnapshot(DatabasePath), tenant);
    }

    public Task<long> GetImportBaselineAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarInt64("SELECT max(rid) FROM memories") ?? 0, ct).AsTask();

    public Task<string?> GetMetaAsync(string key, CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarText("SELECT value FROM store_meta WHERE key = ?1", key), ct).AsTask();

    public Task<IReadOnlyList<KeyValuePair<string, string>>> ListMetaAsync(string prefix, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<KeyValuePair<string, string>>>(c =>
        {
            var rows = new List<KeyValuePair<string, string>>();
            using var statement = c.Prepare("SELECT key, value FROM store_meta WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key");
            statement.Bind(1, prefix);
            while (statement.Step())
            {
                rows.Add(new(statement.GetText(0), statement.GetText(1)));
            }
            return rows;
        }, ct).AsTask();

    public Task SetMetaAsync(string key, string? value, CancellationToken ct = default) =>
        _writer.WriteAsync(c => value is null
            ? c.ExecuteNonQuery("DELETE FROM store_meta WHERE key = ?1", key)
            : c.ExecuteNonQuery("INSERT INTO store_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value), ct);

    public async Task<IReadOnlyList<(ImportOutcome Outcome, Exception? Error)>> ImportAsync(IReadOnlyList<JsonElement> records, ImportRules rules,
        CancellationToken ct = default)
    {
        var tasks = new Task<ImportOutcome>[records.Count];
        var refused = false; // read and written by the writer's items only, which run one after another in this order
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            tasks[i] = _writer.WriteAsync(c =>
            {
                if (refused)
                {
                    return ImportOutcome.NotReached;
                }
                try
                {
                    return ImportOne(c, record, rules);
                }
                catch (Exception ex) when (ex is SqliteException || ImportRecords.IsRecordError(ex))
                {
                    refused = rules.StopAtRefusal;
                    throw;
                }
            }, ct);
        }
        var results = new (ImportOutcome, Exception?)[records.Count];
        for (var i = 0; i < tasks.Length; i++)
        {
            try
            {
                results[i] = (await tasks[i].ConfigureAwait(false), null);
            }
            catch (Exception ex) when (ex is SqliteException || ImportRecords.IsRecordError(ex))
            {
                results[i] = (ImportOutcome.Failed, ex);
            }
        }
        return results;
    }

    private ImportOutcome ImportOne(SqliteConnection c, JsonElement record, ImportRules rules) =>
        ImportRecords.Kind(record) switch
        {
            ExportKinds.Memory => ImportMemory(c, ImportRecords.Memory(record, rules.Validation, NowMs), rules.Baseline),
            ExportKinds.KeyValue => ImportKv(c, ImportRecords.KeyValue(record, rules.Validation), rules.Exact),
            ExportKinds.Entity => ImportEntity(c, ImportRecords.Entity(record)),
            ExportKinds.Relation => ImportRelation(c, ImportRecords.Relation(record)),
            ExportKinds.Link => ImportLink(c, ImportRecords.Link(record)),
            ExportKinds.Conversation => ImportConversation(c, ImportRecords.Conversation(record)),
            ExportKinds.Vector => ImportVector(c, ImportRecords.Vector(record)),
            _ => ImportJob(c, ImportRecords.Job(record, NowMs)),
        };

    private ImportOutcome ImportMemory(SqliteConnection c, ImportedMemory m, long baseline)
    {
        if (c.ScalarInt64("SELECT 1 FROM memories WHERE id = ?1", m.Id) is not null
            || c.ScalarInt64("SELECT 1 FROM memories WHERE tenant = ?1 AND content_hash = ?2 AND user_id IS ?3 AND agent_id IS ?4 AND session_id IS ?5 " +
                "AND namespace IS ?6 AND (expires_at IS NULL OR expires_at > ?7) AND rid <= ?8 LIMIT 1",
                m.Tenant, m.ContentHash, m.UserId, m.AgentId, m.SessionId, m.Namespace, NowMs, baseline) is not null)
        {
            return ImportOutcome.Skipped;
        }
        var seq = AppendChange(c, m.Tenant, m.Id, ChangeRecord.Upsert, NowMs);
        using (var insert = c.Prepare(InsertMemorySql))
        {
            insert.BindAll([m.Id, m.Tenant, m.Content, m.ContentHash, m.Type, m.Tier, m.Importance, m.Valence, m.TagsJson, m.MetadataJson,
                m.UserId, m.AgentId, m.SessionId, m.Namespace, m.Source, m.CreatedAt, m.UpdatedAt, m.LastAccessedAt, m.AccessCount,
                m.ExpiresAt, m.ValidFrom, m.ValidTo, m.Version, seq, m.EntitiesJson, m.SupersededBy]);
            insert.StepToEnd();
        }
        var rid = c.LastInsertRowId;
        InsertTags(c, rid, m.Tags);
        InsertEntities(c, rid, m.Entities);
        foreach (var entry in m.History)
        {
            c.ExecuteNonQuery(
                "INSERT INTO memory_history(tenant, memory_id, seq, event, actor, at, version, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                m.Tenant, m.Id, seq, entry.Event, entry.Actor, entry.At, entry.Version, entry.ChangesJson);
        }
        return ImportOutcome.Imported;
    }

    private ImportOutcome ImportKv(SqliteConnection c, ImportedKeyValue r, bool exact)
    {
        var slot = new KvSlot(r.Tenant, r.Key);
        var now = NowMs;
        var current = _kvHot.Current(c, slot);
        if (current?.Entry is { } existing && (exact || existing.IsLiveAt(now)))
        {
            return ImportOutcome.Skipped;
        }
        // Each history row is a change of its own (schema 14, see NextKvSeq); a key imported without history, or into an
        // older file, is one change-log entry.
        var inHistory = _kvChangesInHistoryAfter is not null && r.History.Count > 0;
        var seq = inHistory ? 0 : AppendKvChange(c, r.Tenant, r.Key, ChangeRecord.Upsert, now);
        // The history rows extend the key's chain (after a deleted key's own, if any); the entry points at the newest.
        var previous = current?.LastHid is > 0 ? current.LastHid : (long?)null;
        using var seqs = ReserveKvSeqs(c, inHistory ? r.History.Count : 0);
        foreach (var entry in r.History)
        {
            if (inHistory)
            {
                seq = NextKvSeq(c, r.Tenant, r.Key, ChangeRecord.Upsert, now);
            }
            previous = InsertKvHistory(c, inHistory ? seq : null, r.Tenant, r.Key, seq, entry.Event, entry.Actor, entry.At, entry.Version, entry.ValueJson,
                entry.ExpiresAt, previous);
        }
        var kv = new KvEntry(r.Key, r.ValueJson, r.ExpiresAt, r.Version, r.CreatedAt, r.UpdatedAt, previous);
        // Written to the table now (a replay after a crash then skips the rows, which are at or below the
        // entry's head) and staged like any write, so the write-behind's view of the key matches.
        var state = new KvHot(kv, previous ?? 0, seq, previous ?? 0);
        SqliteKvWriteBehind.WriteState(c, slot, state);
        _kvHot.Stage(slot, kv, previous ?? 0, seq);
        return ImportOutcome.Imported;
    }

    private ImportOutcome ImportEntity(SqliteConnection c, ImportedEntity r)
    {
        if (EntityExists(c, r.Tenant, r.Name))
        {
            return ImportOutcome.Skipped;
        }
        var now = NowMs;
        var seq = AppendGraphChange(c, r.Tenant, GraphChangeKinds.Entity, r.Name, ChangeRecord.Upsert, now);
        c.ExecuteNonQuery("INSERT INTO graph_entities(tenant, name, entity_type, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            r.Tenant, r.Name, r.Type, r.CreatedAt, r.UpdatedAt);
        foreach (var (observation, createdAt) in r.Observations)
        {
            InsertObservation(c, r.Tenant, r.Name, observation, createdAt);
        }
        AppendGraphHistory(c, Importer with { Tenant = r.Tenant }, seq, GraphEvents.EntityCreated, now, r.Name, null,
            new { entity_type = r.Type, observations = r.Observations.Select(o => o.Observation) });
        return ImportOutcome.Imported;
    }

    private ImportOutcome ImportRelation(SqliteConnection c, ImportedRelation r)
    {
        var relation = r.Relation;
        if (c.ScalarInt64("SELECT 1 FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 AND to_name = ?3 AND relation_type = ?4",
                r.Tenant, relation.From, relation.To, relation.RelationType) is not null)
        {
            return ImportOutcome.Skipped;
        }
        foreach (var (field, name) in (ReadOnlySpan<(string, string)>)[("from", relation.From), ("to", relation.To)])
        {
            if (!EntityExists(c, r.Tenant, name))
            {
                throw new ValidationException(field, $"no entity named '{name}' in tenant '{r.Tenant}' (entities come before relations in an export)");
            }
        }
        var now = NowMs;
        var seq = AppendGraphChange(c, r.Tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Upsert, now);
        c.ExecuteNonQuery(
            "INSERT INTO graph_relations(tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            r.Tenant, relation.From, relation.To, relation.RelationType, relation.Weight, ToMs(relation.ValidFrom), ToMs(relation.ValidTo), r.CreatedAt);
        AppendGraphHistory(c, Importer with { Tenant = r.Tenant }, seq, GraphEvents.RelationCreated, now, relation.From, relation.To,
            relation with { CreatedAt = FromMs(r.CreatedAt) });
        return ImportOutcome.Imported;
    }

    /// <summary>Links are read from their table only (never through the change log), so they need no change-log entry.</summary>
    private static ImportOutcome ImportLink(SqliteConnection c, ImportedLink r) =>
        c.ExecuteNonQuery("INSERT INTO memory_links(tenant, memory_id, kind, target_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            r.Tenant, r.MemoryId, r.Kind, r.TargetId, r.CreatedAt) > 0
            ? ImportOutcome.Imported
            : ImportOutcome.Skipped;

    /// <summary>
    /// Stored vectors of a memory version that is in the store (the index reads them instead of embedding again); a row
    /// already there, or a memory version that is not (skipped as a duplicate, or changed since), is skipped.
    /// </summary>
    private static ImportOutcome ImportVector(SqliteConnection c, MemoryVectors v) =>
        c.ExecuteNonQuery(
            "INSERT INTO memory_vectors(tenant, memory_id, version, model, dims, count, vectors) " +
            "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM memories WHERE tenant = ?1 AND id = ?2 AND version = ?3) " +
            "ON CONFLICT (tenant, memory_id, model, version) DO NOTHING",
            v.Key.Tenant, v.Key.MemoryId, v.Key.Version, v.Model, v.Dimensions, v.Count, Encode(v.Values)) > 0
            ? ImportOutcome.Imported
            : ImportOutcome.Skipped;

    private static ImportOutcome ImportConversation(SqliteConnection c, ImportedConversation r)
    {
        if (c.ScalarInt64("SELECT 1 FROM conversations WHERE id = ?1", r.Id) is not null)
        {
            return ImportOutcome.Skipped;
        }
        c.ExecuteNonQuery("INSERT INTO conversations(id, tenant, body, created_at) VALUES (?1, ?2, ?3, ?4)", r.Id, r.Tenant, r.Body, r.CreatedAt);
        foreach (var entry in r.History)
        {
            c.ExecuteNonQuery("INSERT INTO conversation_history(tenant, conversation_id, event, actor, at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                r.Tenant, r.Id, entry.Event, entry.Actor, entry.At, entry.Detail);
        }
        return ImportOutcome.Imported;
    }

    /// <summary>Workers find a queued job by polling the table: it needs no change-log entry either.</summary>
    private static ImportOutcome ImportJob(SqliteConnection c, ImportedJob r)
    {
        if (c.ScalarInt64("SELECT 1 FROM extraction_jobs WHERE id = ?1", r.Id) is not null)
        {
            return ImportOutcome.Skipped;
        }
        if (c.ScalarInt64("SELECT 1 FROM conversations WHERE id = ?1 AND tenant = ?2", r.ConversationId, r.Tenant) is null)
        {
            throw r.MissingConversation();
        }
        using var insert = c.Prepare(
            "INSERT INTO extraction_jobs(id, tenant, conversation_id, actor, status, attempts, next_attempt_at, lease_owner, lease_until, plan, applied, " +
            "memory_ids, error, model, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
        insert.BindAll([r.Id, r.Tenant, r.ConversationId, r.Actor, r.Status, r.Attempts, r.NextAttemptAt, r.PlanJson, r.AppliedJson, r.MemoryIdsJson,
            r.Error, r.Model, r.CreatedAt, r.UpdatedAt]);
        insert.StepToEnd();
        return ImportOutcome.Imported;
    }
}
