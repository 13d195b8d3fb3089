namespace Engram.Core.Security;

/// <summary>
/// Where API keys live: the store is their system of record, so every process on a data folder (the
/// server, the CLI beside it) sees the same keys. Keys are found by their keyed hash (<see cref="ApiKeyFormat"/>);
/// the plain key is never handed to the store. Every change bumps a generation counter that a server
/// polls to drop its cache when another process changed the keys.
/// </summary>
public interface IApiKeyStore
{
    /// <summary>The store's 32-byte secret for the keyed hash, created on first use when <paramref name="create"/>; null when absent and not created.</summary>
    Task<byte[]?> GetApiKeySecretAsync(bool create, CancellationToken ct = default);

    Task InsertApiKeyAsync(ApiKey key, byte[] hash, CancellationToken ct = default);

    Task<ApiKey?> FindApiKeyByHashAsync(byte[] hash, CancellationToken ct = default);

    /// <summary>Keys whose id is <paramref name="idOrPrefix"/> or whose prefix is it, in <paramref name="tenant"/> (every tenant when null).</summary>
    Task<IReadOnlyList<ApiKey>> FindApiKeysAsync(string idOrPrefix, string? tenant, CancellationToken ct = default);

    /// <summary>Every key (revoked ones included), oldest first; one tenant's when <paramref name="tenant"/> is given.</summary>
    Task<IReadOnlyList<ApiKey>> ListApiKeysAsync(string? tenant, CancellationToken ct = default);

    /// <summary>Marks the key revoked at <paramref name="at"/> unless it already is; false when it was.</summary>
    Task<bool> RevokeApiKeyAsync(string id, DateTimeOffset at, CancellationToken ct = default);

    /// <summary>Revokes <paramref name="oldId"/> and inserts <paramref name="replacement"/> in one transaction.</summary>
    Task RotateApiKeyAsync(string oldId, ApiKey replacement, byte[] hash, CancellationToken ct = default);

    /// <summary>Records when a key was last used (bookkeeping: no generation change).</summary>
    Task TouchApiKeyAsync(string id, DateTimeOffset at, CancellationToken ct = default);

    /// <summary>The generation counter (changes with every key change) and how many keys are not revoked.</summary>
    Task<ApiKeyState> GetApiKeyStateAsync(CancellationToken ct = default);
}

/// <summary>See <see cref="IApiKeyStore.GetApiKeyStateAsync"/>.</summary>
public readonly record struct ApiKeyState(long Generation, int ActiveKeys);
