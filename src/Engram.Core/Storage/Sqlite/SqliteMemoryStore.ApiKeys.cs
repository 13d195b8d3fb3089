using Engram.Core.Security;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// API keys (schema 9): found by their keyed hash, never stored in plain. Every change bumps
/// store_meta's <c>api_keys_generation</c> in the same transaction.
/// </summary>
public sealed partial class SqliteMemoryStore : IApiKeyStore
{
    private const string KeyColumns = "id, prefix, tenant, role, user_id, agent_id, name, created_at, expires_at, revoked_at, last_used_at";

    public async Task<byte[]?> GetApiKeySecretAsync(bool create, CancellationToken ct = default)
    {
        var hex = await _readers.ReadAsync(c => c.ScalarText("SELECT value FROM store_meta WHERE key = 'api_key_secret'"), ct).ConfigureAwait(false);
        if (hex is null && create)
        {
            var fresh = Convert.ToHexStringLower(ApiKeyFormat.NewSecret());
            // Another process may create it first: the first one stays.
            hex = await WriteApartFromKvAsync(c =>
            {
                c.ExecuteNonQuery("INSERT OR IGNORE INTO store_meta(key, value) VALUES ('api_key_secret', ?1)", fresh);
                return c.ScalarText("SELECT value FROM store_meta WHERE key = 'api_key_secret'");
            }, ct).ConfigureAwait(false);
        }
        return hex is null ? null : Convert.FromHexString(hex);
    }

    public Task InsertApiKeyAsync(ApiKey key, byte[] hash, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            InsertKey(c, key, hash);
            BumpKeyGeneration(c);
            return 0;
        }, ct);

    public Task<ApiKey?> FindApiKeyByHashAsync(byte[] hash, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            using var statement = c.Prepare($"SELECT {KeyColumns} FROM api_keys WHERE hash = ?1");
            statement.Bind(1, hash);
            return statement.Step() ? ReadKey(statement) : null;
        }, ct).AsTask();

    public Task<IReadOnlyList<ApiKey>> FindApiKeysAsync(string idOrPrefix, string? tenant, CancellationToken ct = default) =>
        _readers.ReadAsync(c => SelectKeys(c, $"SELECT {KeyColumns} FROM api_keys WHERE (id = ?1 OR prefix = ?1) AND (?2 IS NULL OR tenant = ?2) ORDER BY created_at, id",
            idOrPrefix, tenant), ct).AsTask();

    public Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenant, CancellationToken ct = default) =>
        _readers.ReadAsync(c => SelectKeys(c, $"SELECT {KeyColumns} FROM api_keys WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id", tenant), ct).AsTask();

    public Task<bool> RevokeApiKeyAsync(string id, DateTimeOffset at, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var changed = c.ExecuteNonQuery("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", id, at.ToUnixTimeMilliseconds()) > 0;
            if (changed)
            {
                BumpKeyGeneration(c);
            }
            return changed;
        }, ct);

    public Task RotateApiKeyAsync(string oldId, ApiKey replacement, byte[] hash, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            if (c.ExecuteNonQuery("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", oldId,
                    replacement.CreatedAt.ToUnixTimeMilliseconds()) == 0)
            {
                throw new Common.ConflictException($"key {oldId} was revoked meanwhile; create a new key instead");
            }
            InsertKey(c, replacement, hash);
            BumpKeyGeneration(c);
            return 0;
        }, ct);

    public Task TouchApiKeyAsync(string id, DateTimeOffset at, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c => c.ExecuteNonQuery("UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
            id, at.ToUnixTimeMilliseconds()), WriteDurability.Relaxed, ct);

    public Task<ApiKeyState> GetApiKeyStateAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c => new ApiKeyState(
            c.ScalarInt64("SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = 'api_keys_generation'") ?? 0,
            (int)(c.ScalarInt64("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL") ?? 0)), ct).AsTask();

    private static void InsertKey(SqliteConnection c, ApiKey key, byte[] hash)
    {
        using var statement = c.Prepare(
            "INSERT INTO api_keys(id, prefix, hash, tenant, role, user_id, agent_id, name, created_at, expires_at, revoked_at, last_used_at) " +
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, NULL)");
        statement.BindAll([key.Id, key.Prefix, hash, key.Tenant, key.Role.Name(), key.Scope?.UserId, key.Scope?.AgentId, key.Name,
            key.CreatedAt.ToUnixTimeMilliseconds(), key.ExpiresAt?.ToUnixTimeMilliseconds()]);
        statement.StepToEnd();
    }

    private static void BumpKeyGeneration(SqliteConnection c) =>
        c.ExecuteNonQuery("UPDATE store_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'api_keys_generation'");

    private static IReadOnlyList<ApiKey> SelectKeys(SqliteConnection c, string sql, params ReadOnlySpan<object?> parameters)
    {
        using var statement = c.Prepare(sql);
        statement.BindAll(parameters);
        var keys = new List<ApiKey>();
        while (statement.Step())
        {
            keys.Add(ReadKey(statement));
        }
        return keys;
    }

    private static ApiKey ReadKey(SqliteStatement s)
    {
        var userId = s.GetTextOrNull(4);
        var agentId = s.GetTextOrNull(5);
        return new ApiKey(s.GetText(0), s.GetText(1), s.GetText(2), Roles.TryParse(s.GetText(3), out var role) ? role : Role.Read,
            userId is null && agentId is null ? null : new KeyScope(userId, agentId), s.GetTextOrNull(6),
            DateTimeOffset.FromUnixTimeMilliseconds(s.GetInt64(7)), FromMsOrNull(s.GetInt64OrNull(8)), FromMsOrNull(s.GetInt64OrNull(9)),
            FromMsOrNull(s.GetInt64OrNull(10)));
    }

    private static DateTimeOffset? FromMsOrNull(long? ms) => ms is { } value ? DateTimeOffset.FromUnixTimeMilliseconds(value) : null;
}
