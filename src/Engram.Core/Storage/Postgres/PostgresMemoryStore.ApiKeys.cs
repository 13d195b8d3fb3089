using Engram.Core.Security;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>API keys, found by their keyed hash; every change bumps store_meta's api_keys_generation in the same transaction.</summary>
public sealed partial class PostgresMemoryStore : IApiKeyStore
{
    private const string KeyColumns = "id, prefix, tenant, role, user_id, agent_id, name, created_at, expires_at, revoked_at, last_used_at";

    public async Task<byte[]?> GetApiKeySecretAsync(bool create, CancellationToken ct = default)
    {
        var hex = await ReadAsync(c => ScalarAsync<string?>(c, "SELECT value FROM store_meta WHERE key = 'api_key_secret'", ct), ct).ConfigureAwait(false);
        if (hex is null && create)
        {
            var fresh = Convert.ToHexStringLower(ApiKeyFormat.NewSecret());
            // Another instance may create it first: the first one stays.
            hex = await WriteAsync(async c =>
            {
                await using var insert = Command(c, "INSERT INTO store_meta(key, value) VALUES ('api_key_secret', $1) ON CONFLICT (key) DO NOTHING").Text(fresh);
                await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                return await ScalarAsync<string?>(c, "SELECT value FROM store_meta WHERE key = 'api_key_secret'", ct).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
        }
        return hex is null ? null : Convert.FromHexString(hex);
    }

    public Task InsertApiKeyAsync(ApiKey key, byte[] hash, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await InsertKeyAsync(c, key, hash).ConfigureAwait(false);
            await BumpKeyGenerationAsync(c).ConfigureAwait(false);
            return 0;
        }, ct);

    public Task<ApiKey?> FindApiKeyByHashAsync(byte[] hash, CancellationToken ct = default) =>
        ReadAsync(async c => (await SelectKeysAsync(Command(c, $"SELECT {KeyColumns} FROM api_keys WHERE hash = $1").Bytes(hash)).ConfigureAwait(false))
            .FirstOrDefault(), ct);

    public Task<IReadOnlyList<ApiKey>> FindApiKeysAsync(string idOrPrefix, string? tenant, CancellationToken ct = default) =>
        ReadAsync(c => SelectKeysAsync(Command(c,
            $"SELECT {KeyColumns} FROM api_keys WHERE (id = $1 OR prefix = $1) AND ($2::text IS NULL OR tenant = $2) ORDER BY created_at, id")
            .Text(idOrPrefix).Text(tenant)), ct);

    public Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenant, CancellationToken ct = default) =>
        ReadAsync(c => SelectKeysAsync(Command(c, $"SELECT {KeyColumns} FROM api_keys WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id")
            .Text(tenant)), ct);

    public Task<bool> RevokeApiKeyAsync(string id, DateTimeOffset at, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await using var command = Command(c, "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL").Text(id).Int(at.ToUnixTimeMilliseconds());
            var changed = await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            if (changed)
            {
                await BumpKeyGenerationAsync(c).ConfigureAwait(false);
            }
            return changed;
        }, ct);

    public Task RotateApiKeyAsync(string oldId, ApiKey replacement, byte[] hash, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await using (var command = Command(c, "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .Text(oldId).Int(replacement.CreatedAt.ToUnixTimeMilliseconds()))
            {
                if (await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0)
                {
                    throw new Common.ConflictException($"key {oldId} was revoked meanwhile; create a new key instead");
                }
            }
            await InsertKeyAsync(c, replacement, hash).ConfigureAwait(false);
            await BumpKeyGenerationAsync(c).ConfigureAwait(false);
            return 0;
        }, ct);

    public Task TouchApiKeyAsync(string id, DateTimeOffset at, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await using var command = Command(c, "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2) WHERE id = $1")
                .Text(id).Int(at.ToUnixTimeMilliseconds());
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, WriteDurability.Relaxed, ct);

    public Task<ApiKeyState> GetApiKeyStateAsync(CancellationToken ct = default) =>
        ReadAsync(async c => new ApiKeyState(
            await ScalarAsync<long>(c, "SELECT value::bigint FROM store_meta WHERE key = 'api_keys_generation'", ct).ConfigureAwait(false),
            (int)await ScalarAsync<long>(c, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL", ct).ConfigureAwait(false)), ct);

    private static async Task InsertKeyAsync(NpgsqlConnection c, ApiKey key, byte[] hash)
    {
        await using var command = Command(c,
            "INSERT INTO api_keys(id, prefix, hash, tenant, role, user_id, agent_id, name, created_at, expires_at, revoked_at, last_used_at) " +
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)")
            .Text(key.Id).Text(key.Prefix).Bytes(hash).Text(key.Tenant).Text(key.Role.Name()).Text(key.Scope?.UserId).Text(key.Scope?.AgentId).Text(key.Name)
            .Int(key.CreatedAt.ToUnixTimeMilliseconds()).Int(key.ExpiresAt?.ToUnixTimeMilliseconds());
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private static Task BumpKeyGenerationAsync(NpgsqlConnection c) =>
        ExecuteAsync(c, "UPDATE store_meta SET value = (value::bigint + 1)::text WHERE key = 'api_keys_generation'", CancellationToken.None);

    private static async Task<IReadOnlyList<ApiKey>> SelectKeysAsync(NpgsqlCommand command)
    {
        await using var owned = command;
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var keys = new List<ApiKey>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            var userId = reader.TextOrNull(4);
            var agentId = reader.TextOrNull(5);
            keys.Add(new ApiKey(reader.GetString(0), reader.GetString(1), reader.GetString(2), Roles.TryParse(reader.GetString(3), out var role) ? role : Role.Read,
                userId is null && agentId is null ? null : new KeyScope(userId, agentId), reader.TextOrNull(6),
                FromMs(reader.GetInt64(7)), FromMs(reader.Int64OrNull(8)), FromMs(reader.Int64OrNull(9)), FromMs(reader.Int64OrNull(10))));
        }
        return keys;
    }
}
