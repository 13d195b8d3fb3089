using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using Engram.Core.Operations;
using Engram.Core.Security;

namespace Engram.Core.Storage.Transfer;

/// <summary>
/// Reads a store for an export, on either backend: the statements below run in one
/// <see cref="ISnapshot"/>, so the export is a consistent snapshot (its header's counts are what
/// follows) while writers go on. Each kind is one statement that joins the records with their
/// history (or observations) in record order, stepped row by row, so memory stays flat at any size:
/// a line is built, handed out, and its buffer reused for the next one.
/// </summary>
public sealed class ExportReader : IAsyncDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    private const string MemorySql =
        "SELECT m.tenant, m.id, m.content, m.content_hash, m.type, m.tier, m.importance, m.valence, m.tags, m.metadata, m.entities, " +
        "m.user_id, m.agent_id, m.session_id, m.namespace, m.source, m.created_at, m.updated_at, m.last_accessed_at, m.access_count, " +
        "m.expires_at, m.valid_from, m.valid_to, m.version, m.superseded_by, h.hid, h.event, h.actor, h.at, h.version, h.changes " +
        "FROM memories m LEFT JOIN memory_history h ON h.tenant = m.tenant AND h.memory_id = m.id{0} ORDER BY m.rid, h.hid";

    /// <summary>A key's history is the chain from its newest row back through prev_hid (older rows may be pruned: the chain ends there).</summary>
    private const string KeyValueSql =
        "WITH RECURSIVE chain(tenant, key, hid) AS (" +
        "SELECT e.tenant, e.key, e.last_hid FROM kv_entries e WHERE e.last_hid IS NOT NULL{1} " +
        "UNION ALL SELECT c.tenant, c.key, h.prev_hid FROM chain c JOIN kv_history h ON h.hid = c.hid WHERE h.prev_hid IS NOT NULL) " +
        "SELECT e.tenant, e.key, e.value, e.expires_at, e.version, e.created_at, e.updated_at, h.hid, h.event, h.actor, h.at, h.version, h.value, h.expires_at " +
        "FROM kv_entries e LEFT JOIN chain c ON c.tenant = e.tenant AND c.key = e.key LEFT JOIN kv_history h ON h.hid = c.hid{0} " +
        "ORDER BY e.tenant, e.key, h.hid";

    private const string EntitySql =
        "SELECT e.tenant, e.name, e.entity_type, e.created_at, e.updated_at, o.oid, o.content, o.valid_from, o.valid_to, o.created_at " +
        "FROM graph_entities e LEFT JOIN graph_observations o ON o.tenant = e.tenant AND o.entity_name = e.name{0} ORDER BY e.{1}, o.oid";

    private const string RelationSql =
        "SELECT r.tenant, r.from_name, r.to_name, r.relation_type, r.weight, r.valid_from, r.valid_to, r.created_at FROM graph_relations r{0} ORDER BY r.rid";

    private const string LinkSql =
        "SELECT l.tenant, l.memory_id, l.kind, l.target_id, l.created_at FROM memory_links l{0} ORDER BY l.lid";

    private const string ConversationSql =
        "SELECT c.tenant, c.id, c.body, c.created_at, h.hid, h.event, h.actor, h.at, h.detail " +
        "FROM conversations c LEFT JOIN conversation_history h ON h.tenant = c.tenant AND h.conversation_id = c.id{0} ORDER BY c.created_at, c.id, h.hid";

    private const string JobSql =
        "SELECT j.tenant, j.id, j.conversation_id, j.actor, j.status, j.attempts, j.plan, j.applied, j.memory_ids, j.error, j.model, j.created_at, " +
        "j.updated_at, j.next_attempt_at FROM extraction_jobs j{0} ORDER BY j.created_at, j.id";

    /// <summary>The vectors of each memory's current version (older versions' rows are garbage the pruner drops), in memory order.</summary>
    private const string VectorSql =
        "SELECT v.tenant, v.memory_id, v.version, v.model, v.dims, v.count, v.vectors FROM memory_vectors v " +
        "JOIN memories m ON m.tenant = v.tenant AND m.id = v.memory_id AND m.version = v.version{0} ORDER BY m.rid, v.model";

    private readonly ISnapshot _snapshot;
    private readonly string? _tenant;

    /// <summary>What <c>?1</c>, <c>?2</c> and <c>?3</c> of the tenant filter bind (none for every tenant).</summary>
    private readonly string[] _parameters;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _json;

    public ExportReader(ISnapshot snapshot, string? tenant)
    {
        _snapshot = snapshot;
        _tenant = tenant;
        if (tenant is null)
        {
            _parameters = [];
        }
        else
        {
            var (after, before) = ScopeGuard.PartitionBounds(tenant);
            _parameters = [tenant, after, before];
        }
        _json = new Utf8JsonWriter(_buffer, WriterOptions);
    }

    public int SchemaVersion => _snapshot.SchemaVersion;

    /// <summary>Whether the export carries the stored embedding vectors (<see cref="ExportKinds.Vector"/> records, last).</summary>
    public bool Vectors { get; set; }

    /// <summary>The change log's newest sequence number in the snapshot.</summary>
    public long LastSeq => _snapshot.LastSeq;

    /// <summary>How many records of each kind the export holds (in the snapshot).</summary>
    public async Task<ExportCounts> CountAsync(CancellationToken ct = default) => new(
        await CountRowsAsync("memories", ct).ConfigureAwait(false), await CountRowsAsync("kv_entries", ct).ConfigureAwait(false),
        await CountRowsAsync("graph_entities", ct).ConfigureAwait(false), await CountRowsAsync("graph_relations", ct).ConfigureAwait(false),
        await CountRowsAsync("memory_links", ct).ConfigureAwait(false), await CountRowsAsync("conversations", ct).ConfigureAwait(false),
        await CountRowsAsync("extraction_jobs", ct).ConfigureAwait(false),
        Vectors ? await CountRowsAsync("memory_vectors v JOIN memories m ON m.tenant = v.tenant AND m.id = v.memory_id AND m.version = v.version", ct, "v").ConfigureAwait(false) : null);

    private async Task<long> CountRowsAsync(string table, CancellationToken ct, string? alias = null)
    {
        await using var rows = await _snapshot.QueryAsync($"SELECT count(*) FROM {table}" + Filter(alias), _parameters, ct).ConfigureAwait(false);
        return await rows.ReadAsync(ct).ConfigureAwait(false) ? rows.Int64(0) : 0;
    }

    /// <summary>
    /// Per tenant, how many of each kind the export carries (memories and their history rows, keys and
    /// the rows of their history chains, entities and their observations, relations): what a migration
    /// compares between its source and its target.
    /// </summary>
    public async Task<TransferCounts> CountPerTenantAsync(CancellationToken ct = default)
    {
        var counts = new TransferCounts();
        foreach (var (kind, sql) in TransferCounts.Queries)
        {
            await using var rows = await _snapshot.QueryAsync(string.Format(CultureInfo.InvariantCulture, sql, Filter("x")), _parameters, ct).ConfigureAwait(false);
            while (await rows.ReadAsync(ct).ConfigureAwait(false))
            {
                counts.Add(rows.Text(0), kind, rows.Int64(1));
            }
        }
        return counts;
    }

    /// <summary>
    /// Each API key's keyed hash by key id (the keys themselves are read through <see cref="Security.IApiKeyStore"/>):
    /// what a migration copies so that every key keeps working on the target. Never part of an export.
    /// </summary>
    public async Task<Dictionary<string, byte[]>> ReadApiKeyHashesAsync(CancellationToken ct = default)
    {
        var hashes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        await using var rows = await _snapshot.QueryAsync("SELECT x.id, x.hash FROM api_keys x" + Filter("x"), _parameters, ct).ConfigureAwait(false);
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            hashes[rows.Text(0)] = rows.Bytes(1);
        }
        return hashes;
    }

    private string Filter(string? alias) => _tenant is null ? "" : " WHERE " + TenantCondition(alias);

    /// <summary>
    /// The tenant's rows and its partitions' (a scoped key's key-value entries and graph live in a store tenant of their own,
    /// <c>tenant␟user_id=…</c>, and are the tenant's data as much as the rest): its name, or a name strictly between the bounds
    /// of <see cref="ScopeGuard.PartitionBounds"/>, compared by code point on both backends. A range, not LIKE: '_' and '%'
    /// are wildcards there and tenant names may hold '_', so a LIKE would reach another tenant's rows.
    /// </summary>
    private string TenantCondition(string? alias)
    {
        var tenant = alias is null ? "tenant" : alias + ".tenant";
        var ordered = tenant + _snapshot.CodePointOrder;
        return $"({tenant} = ?1 OR ({ordered} > ?2 AND {ordered} < ?3))";
    }

    /// <summary>
    /// Every record as one line of UTF-8 JSON (no newline): memories with their history, key-value
    /// entries with theirs, graph entities with their observations, relations, then memory links,
    /// conversations with their history and extraction jobs (a job after its conversation), and with
    /// <see cref="Vectors"/> the stored vectors last. A line is valid until the enumeration moves on.
    /// </summary>
    public async IAsyncEnumerable<ExportLine> LinesAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var line in GroupedAsync(string.Format(CultureInfo.InvariantCulture, MemorySql, Filter("m")), ExportKinds.Memory, 1, 25,
            WriteMemory, "history", WriteMemoryHistory, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        await foreach (var line in GroupedAsync(string.Format(CultureInfo.InvariantCulture, KeyValueSql, Filter("e"), _tenant is null ? "" : " AND " + TenantCondition("e")),
            ExportKinds.KeyValue, 1, 7, WriteKeyValue, "history", WriteKeyValueHistory, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        await foreach (var line in GroupedAsync(string.Format(CultureInfo.InvariantCulture, EntitySql, Filter("e"), _snapshot.EntityOrder), ExportKinds.Entity, 1, 5,
            WriteEntity, "observations", WriteObservation, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        // One statement at a time: each kind's rows are closed before the next kind's statement runs.
        await foreach (var line in FlatAsync(RelationSql, "r", ExportKinds.Relation, WriteRelation, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        await foreach (var line in FlatAsync(LinkSql, "l", ExportKinds.Link, WriteLink, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        await foreach (var line in GroupedAsync(string.Format(CultureInfo.InvariantCulture, ConversationSql, Filter("c")), ExportKinds.Conversation, 1, 4,
            WriteConversation, "history", WriteConversationHistory, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        await foreach (var line in FlatAsync(JobSql, "j", ExportKinds.ExtractionJob, WriteJob, ct).ConfigureAwait(false))
        {
            yield return line;
        }
        if (Vectors)
        {
            await foreach (var line in FlatAsync(VectorSql, "v", ExportKinds.Vector, WriteVector, ct).ConfigureAwait(false))
            {
                yield return line;
            }
        }
    }

    /// <summary>Lines of records that are one row each (relations, links, jobs), in the statement's order.</summary>
    private async IAsyncEnumerable<ExportLine> FlatAsync(string sql, string alias, string kind, Action<Utf8JsonWriter, ISnapshotRows> record,
        [EnumeratorCancellation] CancellationToken ct)
    {
        await using var rows = await _snapshot.QueryAsync(string.Format(CultureInfo.InvariantCulture, sql, Filter(alias)), _parameters, ct).ConfigureAwait(false);
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            record(Start(kind), rows);
            yield return Finish(kind);
        }
    }

    private static void WriteRelation(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("from", rows.Text(1));
        w.WriteString("to", rows.Text(2));
        w.WriteString("relation_type", rows.Text(3));
        Number(w, "weight", rows, 4);
        Time(w, "valid_from", rows, 5);
        Time(w, "valid_to", rows, 6);
        Time(w, "created_at", rows, 7);
    }

    /// <summary>The floats as they are stored: count x dims float32, little-endian, base64.</summary>
    private static void WriteVector(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("memory_id", rows.Text(1));
        w.WriteNumber("version", rows.Int64(2));
        w.WriteString("model", rows.Text(3));
        w.WriteNumber("dims", rows.Int64(4));
        w.WriteNumber("count", rows.Int64(5));
        w.WriteBase64String("vectors", rows.Bytes(6));
    }

    private static void WriteLink(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("memory_id", rows.Text(1));
        w.WriteString("link_kind", rows.Text(2));
        w.WriteString("target_id", rows.Text(3));
        Time(w, "created_at", rows, 4);
    }

    private static void WriteJob(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("id", rows.Text(1));
        w.WriteString("conversation_id", rows.Text(2));
        w.WriteString("actor", rows.Text(3));
        w.WriteString("status", rows.Text(4));
        w.WriteNumber("attempts", rows.Int64(5));
        RawOrNull(w, "plan", rows, 6);
        RawOrNull(w, "applied", rows, 7);
        RawOrNull(w, "memory_ids", rows, 8);
        Text(w, "error", rows, 9);
        Text(w, "model", rows, 10);
        Time(w, "created_at", rows, 11);
        Time(w, "updated_at", rows, 12);
        Time(w, "next_attempt_at", rows, 13);
    }

    /// <summary>
    /// Lines of records joined with their children: a row per child (or one with a null child when there
    /// is none), the record's columns repeated. A record ends where the (tenant, column <paramref name="keyColumn"/>) changes.
    /// </summary>
    private async IAsyncEnumerable<ExportLine> GroupedAsync(string sql, string kind, int keyColumn, int childColumn, Action<Utf8JsonWriter, ISnapshotRows> record,
        string children, Action<Utf8JsonWriter, ISnapshotRows> child, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var rows = await _snapshot.QueryAsync(sql, _parameters, ct).ConfigureAwait(false);
        string? tenant = null;
        string? key = null;
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            var rowTenant = rows.Text(0);
            var rowKey = rows.Text(keyColumn);
            if (key is not null && (rowKey != key || rowTenant != tenant))
            {
                yield return End(kind);
                key = null;
            }
            if (key is null)
            {
                var w = Start(kind);
                record(w, rows);
                w.WriteStartArray(children);
                tenant = rowTenant;
                key = rowKey;
            }
            if (!rows.IsNull(childColumn))
            {
                _json.WriteStartObject();
                child(_json, rows);
                _json.WriteEndObject();
            }
        }
        if (key is not null)
        {
            yield return End(kind);
        }
    }

    private ExportLine End(string kind)
    {
        _json.WriteEndArray();
        return Finish(kind);
    }

    private static void WriteMemory(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("id", rows.Text(1));
        w.WriteString("content", rows.Text(2));
        w.WriteString("content_hash", rows.Text(3));
        w.WriteString("type", rows.Text(4));
        w.WriteString("tier", rows.Text(5));
        w.WriteNumber("importance", rows.Double(6));
        Number(w, "valence", rows, 7);
        Raw(w, "tags", rows, 8);
        Raw(w, "metadata", rows, 9);
        Raw(w, "entities", rows, 10);
        for (var i = 11; i <= 15; i++)
        {
            Text(w, ExportFields.MemoryScopes[i - 11], rows, i);
        }
        Time(w, "created_at", rows, 16);
        Time(w, "updated_at", rows, 17);
        Time(w, "last_accessed_at", rows, 18);
        w.WriteNumber("access_count", rows.Int64(19));
        Time(w, "expires_at", rows, 20);
        Time(w, "valid_from", rows, 21);
        Time(w, "valid_to", rows, 22);
        w.WriteNumber("version", rows.Int64(23));
        Text(w, "superseded_by", rows, 24);
    }

    private static void WriteMemoryHistory(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("event", rows.Text(26));
        w.WriteString("actor", rows.Text(27));
        Time(w, "at", rows, 28);
        w.WriteNumber("version", rows.Int64(29));
        Raw(w, "changes", rows, 30);
    }

    private static void WriteKeyValue(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("key", rows.Text(1));
        Raw(w, "value", rows, 2);
        Time(w, "expires_at", rows, 3);
        w.WriteNumber("version", rows.Int64(4));
        Time(w, "created_at", rows, 5);
        Time(w, "updated_at", rows, 6);
    }

    private static void WriteKeyValueHistory(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("event", rows.Text(8));
        w.WriteString("actor", rows.Text(9));
        Time(w, "at", rows, 10);
        w.WriteNumber("version", rows.Int64(11));
        if (rows.IsNull(12))
        {
            w.WriteNull("value");
        }
        else
        {
            Raw(w, "value", rows, 12);
        }
        Time(w, "expires_at", rows, 13);
    }

    private static void WriteEntity(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("name", rows.Text(1));
        w.WriteString("entity_type", rows.Text(2));
        Time(w, "created_at", rows, 3);
        Time(w, "updated_at", rows, 4);
    }

    private static void WriteObservation(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("content", rows.Text(6));
        Time(w, "valid_from", rows, 7);
        Time(w, "valid_to", rows, 8);
        Time(w, "created_at", rows, 9);
    }

    private static void WriteConversation(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("tenant", rows.Text(0));
        w.WriteString("id", rows.Text(1));
        var body = rows.Text(2);
        if (ExportFields.IsStructuredJson(body))
        {
            w.WritePropertyName("body");
            w.WriteRawValue(body, skipInputValidation: true);
        }
        else
        {
            w.WriteString("body", body);
        }
        Time(w, "created_at", rows, 3);
    }

    private static void WriteConversationHistory(Utf8JsonWriter w, ISnapshotRows rows)
    {
        w.WriteString("event", rows.Text(5));
        w.WriteString("actor", rows.Text(6));
        Time(w, "at", rows, 7);
        Text(w, "detail", rows, 8);
    }

    private Utf8JsonWriter Start(string kind)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        _json.WriteStartObject();
        _json.WriteString("kind", kind);
        return _json;
    }

    private ExportLine Finish(string kind)
    {
        _json.WriteEndObject();
        _json.Flush();
        return new ExportLine(kind, _buffer.WrittenMemory);
    }

    private static void Raw(Utf8JsonWriter w, string name, ISnapshotRows rows, int column)
    {
        w.WritePropertyName(name);
        rows.WriteRawJson(w, column);
    }

    private static void RawOrNull(Utf8JsonWriter w, string name, ISnapshotRows rows, int column)
    {
        if (rows.IsNull(column))
        {
            w.WriteNull(name);
        }
        else
        {
            Raw(w, name, rows, column);
        }
    }

    private static void Text(Utf8JsonWriter w, string name, ISnapshotRows rows, int column)
    {
        if (rows.IsNull(column))
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, rows.Text(column));
        }
    }

    private static void Number(Utf8JsonWriter w, string name, ISnapshotRows rows, int column)
    {
        if (rows.IsNull(column))
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteNumber(name, rows.Double(column));
        }
    }

    private static void Time(Utf8JsonWriter w, string name, ISnapshotRows rows, int column)
    {
        if (rows.IsNull(column))
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, ExportFields.FormatTime(rows.Int64(column)));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _json.DisposeAsync().ConfigureAwait(false);
        await _snapshot.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>One exported record: its kind and its JSON (valid until the reader moves on).</summary>
public readonly record struct ExportLine(string Kind, ReadOnlyMemory<byte> Json);

/// <summary>Field names and value formats shared by the export and the import.</summary>
public static class ExportFields
{
    /// <summary>The memory's scope and source columns, in the order the export writes them.</summary>
    public static readonly string[] MemoryScopes = ["user_id", "agent_id", "session_id", "namespace", "source"];

    /// <summary>
    /// Whether a text column holds a JSON object, array, number, true, false or null (then it is written raw, as the other
    /// JSON columns are); anything else, a JSON string included, is written as a string, so the text round-trips exactly.
    /// </summary>
    public static bool IsStructuredJson(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var reader = new Utf8JsonReader(bytes);
        try
        {
            if (!reader.Read() || reader.TokenType == JsonTokenType.String)
            {
                return false;
            }
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Times are ISO 8601 UTC with milliseconds (the store's precision), so they round-trip exactly.</summary>
    public static string FormatTime(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
