using System.Globalization;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Security;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Export and import (see <see cref="StoreExport"/>, <see cref="StoreImport"/>). An export reads a
/// snapshot on its own connection; an import writes each record as it was (ids, versions, times and
/// history kept), through the writer and with a change-log entry per record so indexes and other
/// instances pick it up. A record already in the store (same id or key, or the same content in the
/// same scope) is skipped.
/// </summary>
public sealed partial class SqliteMemoryStore
{
    private static readonly Caller Importer = Caller.System("import");

    /// <summary>
    /// Opens a consistent snapshot of the store for an export (<paramref name="tenant"/> null: every
    /// tenant). Key-value states written behind are folded into their table first, so the snapshot holds them.
    /// </summary>
    public async Task<SqliteExportReader> OpenExportAsync(string? tenant, CancellationToken ct = default)
    {
        if (!_kvHot.IsEmpty)
        {
            await _writer.WriteAsync(c =>
            {
                _kvHot.Flush(c, slot => tenant is null || slot.Tenant == tenant);
                return 0;
            }, WriteDurability.Relaxed, ct).ConfigureAwait(false);
        }
        return new SqliteExportReader(DatabasePath, tenant);
    }

    /// <summary>The newest memory row when an import starts: only rows up to it count as content duplicates (the file's own twins are kept).</summary>
    public Task<long> GetImportBaselineAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarInt64("SELECT max(rid) FROM memories") ?? 0, ct).AsTask();

    /// <summary>
    /// Imports the records as one group of writes (one transaction unless a record fails, which never
    /// takes the others with it); each result is <see cref="ImportOutcome.Imported"/>,
    /// <see cref="ImportOutcome.Skipped"/> or the exception that refused it.
    /// </summary>
    public async Task<IReadOnlyList<(ImportOutcome Outcome, Exception? Error)>> ImportAsync(IReadOnlyList<JsonElement> records, long baseline,
        CancellationToken ct = default)
    {
        var tasks = new Task<ImportOutcome>[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            tasks[i] = _writer.WriteAsync(c => ImportOne(c, record, baseline), ct);
        }
        var results = new (ImportOutcome, Exception?)[records.Count];
        for (var i = 0; i < tasks.Length; i++)
        {
            try
            {
                results[i] = (await tasks[i].ConfigureAwait(false), null);
            }
            catch (Exception ex) when (ex is EngramException or StoreException or SqliteException or JsonException or FormatException or InvalidOperationException)
            {
                results[i] = (ImportOutcome.Failed, ex);
            }
        }
        return results;
    }

    private ImportOutcome ImportOne(SqliteConnection c, JsonElement record, long baseline) =>
        ImportJson.Text(record, "kind") switch
        {
            ExportKinds.Memory => ImportMemory(c, record, baseline),
            ExportKinds.KeyValue => ImportKv(c, record),
            ExportKinds.Entity => ImportEntity(c, record),
            ExportKinds.Relation => ImportRelation(c, record),
            var other => throw new ValidationException("kind", $"unknown kind '{other}'"),
        };

    private ImportOutcome ImportMemory(SqliteConnection c, JsonElement r, long baseline)
    {
        var tenant = ImportJson.Tenant(r);
        var id = ImportJson.Text(r, "id");
        var scopes = ExportFields.MemoryScopes.Select(f => ImportJson.TextOrNull(r, f)).ToArray();
        var hash = ImportJson.Text(r, "content_hash");
        if (c.ScalarInt64("SELECT 1 FROM memories WHERE id = ?1", id) is not null
            || c.ScalarInt64("SELECT 1 FROM memories WHERE tenant = ?1 AND content_hash = ?2 AND user_id IS ?3 AND agent_id IS ?4 AND session_id IS ?5 " +
                "AND namespace IS ?6 AND (expires_at IS NULL OR expires_at > ?7) AND rid <= ?8 LIMIT 1",
                tenant, hash, scopes[0], scopes[1], scopes[2], scopes[3], NowMs, baseline) is not null)
        {
            return ImportOutcome.Skipped;
        }
        var tier = ImportJson.Text(r, "tier");
        if (!MemoryTiers.TryParse(tier, out _))
        {
            throw new ValidationException("tier", $"unknown tier '{tier}'");
        }
        var tags = ImportJson.StringArray(r, "tags");
        var entities = ImportJson.StringArray(r, "entities");
        var metadata = r.GetProperty("metadata");
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw new ValidationException("metadata", "metadata must be an object");
        }
        var seq = AppendChange(c, tenant, id, ChangeRecord.Upsert, NowMs);
        using (var insert = c.Prepare(InsertMemorySql))
        {
            insert.BindAll([id, tenant, ImportJson.Text(r, "content"), hash, ImportJson.Text(r, "type"), tier, ImportJson.Number(r, "importance"),
                ImportJson.NumberOrNull(r, "valence"), r.GetProperty("tags").GetRawText(), metadata.GetRawText(), scopes[0], scopes[1], scopes[2], scopes[3], scopes[4],
                ImportJson.Time(r, "created_at"), ImportJson.Time(r, "updated_at"), ImportJson.TimeOrNull(r, "last_accessed_at"), ImportJson.Integer(r, "access_count"),
                ImportJson.TimeOrNull(r, "expires_at"), ImportJson.TimeOrNull(r, "valid_from"), ImportJson.TimeOrNull(r, "valid_to"), ImportJson.Integer(r, "version"),
                seq, r.GetProperty("entities").GetRawText()]);
            insert.StepToEnd();
        }
        var rid = c.LastInsertRowId;
        InsertTags(c, rid, tags);
        InsertEntities(c, rid, entities);
        foreach (var entry in ImportJson.Array(r, "history"))
        {
            c.ExecuteNonQuery(
                "INSERT INTO memory_history(tenant, memory_id, seq, event, actor, at, version, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                tenant, id, seq, ImportJson.Text(entry, "event"), ImportJson.Text(entry, "actor"), ImportJson.Time(entry, "at"),
                ImportJson.Integer(entry, "version"), entry.GetProperty("changes").GetRawText());
        }
        return ImportOutcome.Imported;
    }

    private ImportOutcome ImportKv(SqliteConnection c, JsonElement r)
    {
        var tenant = ImportJson.Tenant(r);
        var key = ImportJson.Text(r, "key");
        var slot = new KvSlot(tenant, key);
        var now = NowMs;
        var current = _kvHot.Current(c, slot);
        if (current?.Entry is { } existing && existing.IsLiveAt(now))
        {
            return ImportOutcome.Skipped;
        }
        var seq = AppendKvChange(c, tenant, key, ChangeRecord.Upsert, now);
        // The history rows extend the key's chain (after a deleted key's own, if any); the entry points at the newest.
        var previous = current?.LastHid is > 0 ? current.LastHid : (long?)null;
        foreach (var entry in ImportJson.Array(r, "history"))
        {
            var value = entry.GetProperty("value");
            c.ExecuteNonQuery(
                "INSERT INTO kv_history(tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                tenant, key, seq, ImportJson.Text(entry, "event"), ImportJson.Text(entry, "actor"), ImportJson.Time(entry, "at"), ImportJson.Integer(entry, "version"),
                value.ValueKind == JsonValueKind.Null ? null : value.GetRawText(), ImportJson.TimeOrNull(entry, "expires_at"), previous);
            previous = c.LastInsertRowId;
        }
        var kv = new KvEntry(key, r.GetProperty("value").GetRawText(), ImportJson.TimeOrNull(r, "expires_at"), ImportJson.Integer(r, "version"),
            ImportJson.Time(r, "created_at"), ImportJson.Time(r, "updated_at"), previous);
        // Written to the table now (a replay after a crash then skips the rows, which are at or below the
        // entry's head) and staged like any write, so the write-behind's view of the key matches.
        var state = new KvHot(kv, previous ?? 0, seq, previous ?? 0);
        SqliteKvWriteBehind.WriteState(c, slot, state);
        _kvHot.Stage(slot, kv, previous ?? 0, seq);
        return ImportOutcome.Imported;
    }

    private ImportOutcome ImportEntity(SqliteConnection c, JsonElement r)
    {
        var tenant = ImportJson.Tenant(r);
        var name = ImportJson.Text(r, "name");
        if (EntityExists(c, tenant, name))
        {
            return ImportOutcome.Skipped;
        }
        var now = NowMs;
        var type = ImportJson.Text(r, "entity_type");
        var seq = AppendGraphChange(c, tenant, GraphChangeKinds.Entity, name, ChangeRecord.Upsert, now);
        c.ExecuteNonQuery("INSERT INTO graph_entities(tenant, name, entity_type, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            tenant, name, type, ImportJson.Time(r, "created_at"), ImportJson.Time(r, "updated_at"));
        var observations = new List<Observation>();
        foreach (var o in ImportJson.Array(r, "observations"))
        {
            var observation = new Observation
            {
                Content = ImportJson.Text(o, "content"),
                ValidFrom = FromMs(ImportJson.TimeOrNull(o, "valid_from")),
                ValidTo = FromMs(ImportJson.TimeOrNull(o, "valid_to")),
            };
            InsertObservation(c, tenant, name, observation, ImportJson.Time(o, "created_at"));
            observations.Add(observation);
        }
        AppendGraphHistory(c, Importer with { Tenant = tenant }, seq, GraphEvents.EntityCreated, now, name, null, new { entity_type = type, observations });
        return ImportOutcome.Imported;
    }

    private ImportOutcome ImportRelation(SqliteConnection c, JsonElement r)
    {
        var tenant = ImportJson.Tenant(r);
        var relation = new Relation
        {
            From = ImportJson.Text(r, "from"),
            To = ImportJson.Text(r, "to"),
            RelationType = ImportJson.Text(r, "relation_type"),
            Weight = ImportJson.NumberOrNull(r, "weight"),
            ValidFrom = FromMs(ImportJson.TimeOrNull(r, "valid_from")),
            ValidTo = FromMs(ImportJson.TimeOrNull(r, "valid_to")),
        };
        if (c.ScalarInt64("SELECT 1 FROM graph_relations WHERE tenant = ?1 AND from_name = ?2 AND to_name = ?3 AND relation_type = ?4",
                tenant, relation.From, relation.To, relation.RelationType) is not null)
        {
            return ImportOutcome.Skipped;
        }
        foreach (var (field, name) in (ReadOnlySpan<(string, string)>)[("from", relation.From), ("to", relation.To)])
        {
            if (!EntityExists(c, tenant, name))
            {
                throw new ValidationException(field, $"no entity named '{name}' in tenant '{tenant}' (entities come before relations in an export)");
            }
        }
        var now = NowMs;
        var createdAt = ImportJson.Time(r, "created_at");
        var seq = AppendGraphChange(c, tenant, GraphChangeKinds.Relation, RelationKey(relation), ChangeRecord.Upsert, now);
        c.ExecuteNonQuery(
            "INSERT INTO graph_relations(tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            tenant, relation.From, relation.To, relation.RelationType, relation.Weight, ToMs(relation.ValidFrom), ToMs(relation.ValidTo), createdAt);
        AppendGraphHistory(c, Importer with { Tenant = tenant }, seq, GraphEvents.RelationCreated, now, relation.From, relation.To,
            relation with { CreatedAt = FromMs(createdAt) });
        return ImportOutcome.Imported;
    }
}

/// <summary>Reads the fields of an export record, with a clear error naming the field that is missing or wrong.</summary>
internal static class ImportJson
{
    public static string Tenant(JsonElement r) => TenantNames.Require(Text(r, "tenant"), "tenant");

    public static JsonElement Field(JsonElement r, string name) =>
        r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var value) ? value : throw new ValidationException(name, $"'{name}' is missing");

    public static string Text(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.String } value ? value.GetString()! : throw new ValidationException(name, $"'{name}' must be a string");

    public static string? TextOrNull(JsonElement r, string name) =>
        r.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Text(r, name) : null;

    public static double Number(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.Number } value ? value.GetDouble() : throw new ValidationException(name, $"'{name}' must be a number");

    public static double? NumberOrNull(JsonElement r, string name) =>
        r.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Number(r, name) : null;

    public static long Integer(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.Number } value && value.TryGetInt64(out var number)
            ? number
            : throw new ValidationException(name, $"'{name}' must be an integer");

    public static long Time(JsonElement r, string name) =>
        DateTimeOffset.TryParse(Text(r, name), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)
            ? time.ToUnixTimeMilliseconds()
            : throw new ValidationException(name, $"'{name}' must be an ISO 8601 time");

    public static long? TimeOrNull(JsonElement r, string name) =>
        r.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Time(r, name) : null;

    public static JsonElement.ArrayEnumerator Array(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.Array } value ? value.EnumerateArray() : throw new ValidationException(name, $"'{name}' must be an array");

    public static List<string> StringArray(JsonElement r, string name)
    {
        var items = new List<string>();
        foreach (var item in Array(r, name))
        {
            items.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw new ValidationException(name, $"'{name}' must be an array of strings"));
        }
        return items;
    }
}
