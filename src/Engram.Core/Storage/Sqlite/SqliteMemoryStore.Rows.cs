using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

public sealed partial class SqliteMemoryStore
{
    private const string InsertMemorySql =
        "INSERT INTO memories (id, tenant, content, content_hash, type, tier, importance, valence, tags, metadata, " +
        "user_id, agent_id, session_id, namespace, source, created_at, updated_at, last_accessed_at, access_count, " +
        "expires_at, valid_from, valid_to, version, seq, entities, superseded_by) " +
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)";

    private const string UpdateMemorySql =
        "UPDATE memories SET content = ?3, content_hash = ?4, type = ?5, tier = ?6, importance = ?7, valence = ?8, " +
        "tags = ?9, metadata = ?10, user_id = ?11, agent_id = ?12, session_id = ?13, namespace = ?14, source = ?15, " +
        "created_at = ?16, updated_at = ?17, last_accessed_at = ?18, access_count = ?19, expires_at = ?20, " +
        "valid_from = ?21, valid_to = ?22, version = ?23, seq = ?24, entities = ?25, superseded_by = ?26 WHERE id = ?1 AND tenant = ?2";

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
        statement.Bind(26, m.SupersededBy);
    }

}
