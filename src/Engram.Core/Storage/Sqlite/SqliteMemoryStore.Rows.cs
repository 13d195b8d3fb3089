using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Core.Storage.Sqlite;

public sealed partial class SqliteMemoryStore
{
    /// <summary>The column list every memory query selects, in the order <see cref="ReadMemory"/> reads.</summary>
    private const string MemoryColumns =
        "m.id, m.content, m.content_hash, m.type, m.tier, m.importance, m.valence, m.tags, m.metadata, " +
        "m.user_id, m.agent_id, m.session_id, m.namespace, m.source, m.created_at, m.updated_at, " +
        "m.last_accessed_at, m.access_count, m.expires_at, m.valid_from, m.valid_to, m.version, m.entities";

    /// <summary>How many columns <see cref="MemoryColumns"/> has: a query selecting more puts them from this index on.</summary>
    private const int MemoryColumnCount = 23;

    private const string InsertMemorySql =
        "INSERT INTO memories (id, tenant, content, content_hash, type, tier, importance, valence, tags, metadata, " +
        "user_id, agent_id, session_id, namespace, source, created_at, updated_at, last_accessed_at, access_count, " +
        "expires_at, valid_from, valid_to, version, seq, entities) " +
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)";

    private const string UpdateMemorySql =
        "UPDATE memories SET content = ?3, content_hash = ?4, type = ?5, tier = ?6, importance = ?7, valence = ?8, " +
        "tags = ?9, metadata = ?10, user_id = ?11, agent_id = ?12, session_id = ?13, namespace = ?14, source = ?15, " +
        "created_at = ?16, updated_at = ?17, last_accessed_at = ?18, access_count = ?19, expires_at = ?20, " +
        "valid_from = ?21, valid_to = ?22, version = ?23, seq = ?24, entities = ?25 WHERE id = ?1 AND tenant = ?2";

    private static Memory ReadMemory(SqliteStatement row) => new()
    {
        Id = row.GetText(0),
        Content = row.GetText(1),
        ContentHash = row.GetText(2),
        Type = row.GetText(3),
        Tier = MemoryTiers.TryParse(row.GetText(4), out var tier) ? tier : MemoryTier.LongTerm,
        Importance = row.GetDouble(5),
        Valence = row.GetDoubleOrNull(6),
        Tags = JsonSerializer.Deserialize<string[]>(row.GetBytes(7)) ?? [],
        Metadata = ParseElement(row.GetBytes(8)),
        UserId = row.GetTextOrNull(9),
        AgentId = row.GetTextOrNull(10),
        SessionId = row.GetTextOrNull(11),
        Namespace = row.GetTextOrNull(12),
        Source = row.GetTextOrNull(13),
        CreatedAt = FromMs(row.GetInt64(14)),
        UpdatedAt = FromMs(row.GetInt64(15)),
        LastAccessedAt = FromMs(row.GetInt64OrNull(16)),
        AccessCount = row.GetInt64(17),
        ExpiresAt = FromMs(row.GetInt64OrNull(18)),
        ValidFrom = FromMs(row.GetInt64OrNull(19)),
        ValidTo = FromMs(row.GetInt64OrNull(20)),
        Version = row.GetInt64(21),
        Entities = JsonSerializer.Deserialize<string[]>(row.GetBytes(22)) ?? [],
    };

    /// <summary>Binds a memory to <see cref="InsertMemorySql"/> / <see cref="UpdateMemorySql"/> (same parameter numbers).</summary>
    private static void BindMemory(SqliteStatement statement, string tenant, Memory m, long seq)
    {
        statement.Bind(1, m.Id);
        statement.Bind(2, tenant);
        statement.Bind(3, m.Content);
        statement.Bind(4, m.ContentHash);
        statement.Bind(5, m.Type);
        statement.Bind(6, m.Tier.ToWire());
        statement.Bind(7, m.Importance);
        statement.Bind(8, m.Valence);
        statement.Bind(9, JsonSerializer.Serialize(m.Tags, EngramJson.Options));
        statement.Bind(10, m.Metadata.GetRawText());
        statement.Bind(11, m.UserId);
        statement.Bind(12, m.AgentId);
        statement.Bind(13, m.SessionId);
        statement.Bind(14, m.Namespace);
        statement.Bind(15, m.Source);
        statement.Bind(16, m.CreatedAt.ToUnixTimeMilliseconds());
        statement.Bind(17, m.UpdatedAt.ToUnixTimeMilliseconds());
        statement.Bind(18, ToMs(m.LastAccessedAt));
        statement.Bind(19, m.AccessCount);
        statement.Bind(20, ToMs(m.ExpiresAt));
        statement.Bind(21, ToMs(m.ValidFrom));
        statement.Bind(22, ToMs(m.ValidTo));
        statement.Bind(23, m.Version);
        statement.Bind(24, seq);
        statement.Bind(25, JsonSerializer.Serialize(m.Entities, EngramJson.Options));
    }

    private static JsonElement ParseElement(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        return JsonElement.ParseValue(ref reader);
    }

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static DateTimeOffset? FromMs(long? ms) => ms is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(ms.Value);

    private static long? ToMs(DateTimeOffset? value) => value?.ToUnixTimeMilliseconds();
}
