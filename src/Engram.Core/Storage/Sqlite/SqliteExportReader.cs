using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Engram.Core.Operations;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Reads a store for an export: one read transaction on a connection of its own, so the export is
/// a consistent snapshot (its header's counts are what follows) while writers go on in WAL mode.
/// Every kind is read by one statement stepped row by row, so memory stays flat at any size: a
/// line is built, handed out, and its buffer reused for the next one.
/// </summary>
public sealed class SqliteExportReader : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    private readonly SqliteConnection _connection;
    private readonly string? _tenant;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _json;

    internal SqliteExportReader(string path, string? tenant)
    {
        _tenant = tenant;
        _connection = SqliteConnection.Open(path, readOnly: true, create: false);
        _json = new Utf8JsonWriter(_buffer, WriterOptions);
        _connection.Execute("BEGIN");
        // The first read fixes the snapshot every later statement of the transaction sees.
        SchemaVersion = SqliteSchema.CurrentVersion(_connection);
        LastSeq = _connection.ScalarInt64("SELECT MAX(seq) FROM changelog") ?? 0;
    }

    public int SchemaVersion { get; }

    /// <summary>The change log's newest sequence number in the snapshot.</summary>
    public long LastSeq { get; }

    /// <summary>How many records of each kind the export holds (in the snapshot).</summary>
    public ExportCounts Count() => new(
        CountRows("memories"), CountRows("kv_entries"), CountRows("graph_entities"), CountRows("graph_relations"));

    private long CountRows(string table) => _tenant is null
        ? _connection.ScalarInt64($"SELECT count(*) FROM {table}") ?? 0
        : _connection.ScalarInt64($"SELECT count(*) FROM {table} WHERE tenant = ?1", _tenant) ?? 0;

    private string Where => _tenant is null ? "" : " WHERE tenant = ?1";

    private void BindTenant(SqliteStatement statement)
    {
        if (_tenant is not null)
        {
            statement.Bind(1, _tenant);
        }
    }

    /// <summary>
    /// Every record as one line of UTF-8 JSON (no newline): memories with their history, key-value
    /// entries with theirs, graph entities with their observations, then relations. A line is valid
    /// until the enumeration moves on.
    /// </summary>
    public IEnumerable<ExportLine> Lines()
    {
        foreach (var line in Memories())
        {
            yield return line;
        }
        foreach (var line in KeyValues())
        {
            yield return line;
        }
        foreach (var line in Entities())
        {
            yield return line;
        }
        foreach (var line in Relations())
        {
            yield return line;
        }
    }

    private IEnumerable<ExportLine> Memories()
    {
        using var rows = _connection.Prepare(
            "SELECT tenant, id, content, content_hash, type, tier, importance, valence, tags, metadata, entities, user_id, agent_id, session_id, " +
            "namespace, source, created_at, updated_at, last_accessed_at, access_count, expires_at, valid_from, valid_to, version FROM memories" +
            Where + " ORDER BY rid");
        using var history = _connection.Prepare("SELECT event, actor, at, version, changes FROM memory_history WHERE tenant = ?1 AND memory_id = ?2 ORDER BY hid");
        BindTenant(rows);
        while (rows.Step())
        {
            var w = Start(ExportKinds.Memory);
            var tenant = rows.GetText(0);
            var id = rows.GetText(1);
            w.WriteString("tenant", tenant);
            w.WriteString("id", id);
            w.WriteString("content", rows.GetText(2));
            w.WriteString("content_hash", rows.GetText(3));
            w.WriteString("type", rows.GetText(4));
            w.WriteString("tier", rows.GetText(5));
            w.WriteNumber("importance", rows.GetDouble(6));
            WriteNumber(w, "valence", rows.GetDoubleOrNull(7));
            Raw(w, "tags", rows.GetBytes(8));
            Raw(w, "metadata", rows.GetBytes(9));
            Raw(w, "entities", rows.GetBytes(10));
            for (var i = 11; i <= 15; i++)
            {
                WriteText(w, ExportFields.MemoryScopes[i - 11], rows.GetTextOrNull(i));
            }
            Time(w, "created_at", rows.GetInt64(16));
            Time(w, "updated_at", rows.GetInt64(17));
            Time(w, "last_accessed_at", rows.GetInt64OrNull(18));
            w.WriteNumber("access_count", rows.GetInt64(19));
            Time(w, "expires_at", rows.GetInt64OrNull(20));
            Time(w, "valid_from", rows.GetInt64OrNull(21));
            Time(w, "valid_to", rows.GetInt64OrNull(22));
            w.WriteNumber("version", rows.GetInt64(23));
            w.WriteStartArray("history");
            history.BindAll([tenant, id]);
            while (history.Step())
            {
                w.WriteStartObject();
                w.WriteString("event", history.GetText(0));
                w.WriteString("actor", history.GetText(1));
                Time(w, "at", history.GetInt64(2));
                w.WriteNumber("version", history.GetInt64(3));
                Raw(w, "changes", history.GetBytes(4));
                w.WriteEndObject();
            }
            history.Reset();
            w.WriteEndArray();
            yield return Finish(ExportKinds.Memory);
        }
    }

    private IEnumerable<ExportLine> KeyValues()
    {
        using var rows = _connection.Prepare(
            "SELECT tenant, key, value, expires_at, version, created_at, updated_at, last_hid FROM kv_entries" + Where + " ORDER BY tenant, key");
        using var history = _connection.Prepare("SELECT event, actor, at, version, value, expires_at, prev_hid FROM kv_history WHERE hid = ?1");
        BindTenant(rows);
        var chain = new List<(string Event, string Actor, long At, long Version, string? Value, long? ExpiresAt)>();
        while (rows.Step())
        {
            var w = Start(ExportKinds.KeyValue);
            w.WriteString("tenant", rows.GetText(0));
            w.WriteString("key", rows.GetText(1));
            Raw(w, "value", rows.GetBytes(2));
            Time(w, "expires_at", rows.GetInt64OrNull(3));
            w.WriteNumber("version", rows.GetInt64(4));
            Time(w, "created_at", rows.GetInt64(5));
            Time(w, "updated_at", rows.GetInt64(6));
            // The key's history is a chain from its newest row back (see SqliteMemoryStore.KeyValue).
            chain.Clear();
            for (var next = rows.GetInt64OrNull(7); next is { } hid;)
            {
                history.Bind(1, hid);
                if (!history.Step())
                {
                    history.Reset();
                    break; // older rows were pruned by the history retention
                }
                chain.Add((history.GetText(0), history.GetText(1), history.GetInt64(2), history.GetInt64(3), history.GetTextOrNull(4), history.GetInt64OrNull(5)));
                next = history.GetInt64OrNull(6);
                history.Reset();
            }
            w.WriteStartArray("history");
            for (var i = chain.Count - 1; i >= 0; i--)
            {
                var entry = chain[i];
                w.WriteStartObject();
                w.WriteString("event", entry.Event);
                w.WriteString("actor", entry.Actor);
                Time(w, "at", entry.At);
                w.WriteNumber("version", entry.Version);
                if (entry.Value is null)
                {
                    w.WriteNull("value");
                }
                else
                {
                    w.WritePropertyName("value");
                    w.WriteRawValue(entry.Value, skipInputValidation: true);
                }
                Time(w, "expires_at", entry.ExpiresAt);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            yield return Finish(ExportKinds.KeyValue);
        }
    }

    private IEnumerable<ExportLine> Entities()
    {
        using var rows = _connection.Prepare("SELECT tenant, name, entity_type, created_at, updated_at FROM graph_entities" + Where + " ORDER BY rowid");
        using var observations = _connection.Prepare(
            "SELECT content, valid_from, valid_to, created_at FROM graph_observations WHERE tenant = ?1 AND entity_name = ?2 ORDER BY oid");
        BindTenant(rows);
        while (rows.Step())
        {
            var w = Start(ExportKinds.Entity);
            var tenant = rows.GetText(0);
            var name = rows.GetText(1);
            w.WriteString("tenant", tenant);
            w.WriteString("name", name);
            w.WriteString("entity_type", rows.GetText(2));
            Time(w, "created_at", rows.GetInt64(3));
            Time(w, "updated_at", rows.GetInt64(4));
            w.WriteStartArray("observations");
            observations.BindAll([tenant, name]);
            while (observations.Step())
            {
                w.WriteStartObject();
                w.WriteString("content", observations.GetText(0));
                Time(w, "valid_from", observations.GetInt64OrNull(1));
                Time(w, "valid_to", observations.GetInt64OrNull(2));
                Time(w, "created_at", observations.GetInt64(3));
                w.WriteEndObject();
            }
            observations.Reset();
            w.WriteEndArray();
            yield return Finish(ExportKinds.Entity);
        }
    }

    private IEnumerable<ExportLine> Relations()
    {
        using var rows = _connection.Prepare(
            "SELECT tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at FROM graph_relations" + Where + " ORDER BY rid");
        BindTenant(rows);
        while (rows.Step())
        {
            var w = Start(ExportKinds.Relation);
            w.WriteString("tenant", rows.GetText(0));
            w.WriteString("from", rows.GetText(1));
            w.WriteString("to", rows.GetText(2));
            w.WriteString("relation_type", rows.GetText(3));
            WriteNumber(w, "weight", rows.GetDoubleOrNull(4));
            Time(w, "valid_from", rows.GetInt64OrNull(5));
            Time(w, "valid_to", rows.GetInt64OrNull(6));
            Time(w, "created_at", rows.GetInt64(7));
            yield return Finish(ExportKinds.Relation);
        }
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

    private static void Raw(Utf8JsonWriter w, string name, ReadOnlySpan<byte> json)
    {
        w.WritePropertyName(name);
        w.WriteRawValue(json, skipInputValidation: true);
    }

    private static void WriteText(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

    private static void WriteNumber(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } number)
        {
            w.WriteNumber(name, number);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void Time(Utf8JsonWriter w, string name, long? ms)
    {
        if (ms is { } value)
        {
            w.WriteString(name, ExportFields.FormatTime(value));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    public void Dispose()
    {
        _json.Dispose();
        try
        {
            _connection.Execute("COMMIT");
        }
        catch (SqliteException)
        {
            // The read transaction ends with the connection anyway.
        }
        _connection.Dispose();
    }
}

/// <summary>One exported record: its kind and its JSON (valid until the reader moves on).</summary>
public readonly record struct ExportLine(string Kind, ReadOnlyMemory<byte> Json);

/// <summary>Field names and value formats shared by the export and the import.</summary>
public static class ExportFields
{
    /// <summary>The memory's scope and source columns, in the order the export writes them.</summary>
    public static readonly string[] MemoryScopes = ["user_id", "agent_id", "session_id", "namespace", "source"];

    /// <summary>Times are ISO 8601 UTC with milliseconds (the store's precision), so they round-trip exactly.</summary>
    public static string FormatTime(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
