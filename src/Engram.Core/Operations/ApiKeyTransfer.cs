using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Operations;

/// <summary>
/// Moves API keys from one store to another with their keyed hashes and the secret the hashes are keyed with
/// (without the same secret no key would match): what a migration copies, and what a logical backup carries and its
/// restore puts back, so users' keys keep working after either. Never part of an export.
/// </summary>
public static class ApiKeyTransfer
{
    /// <summary>The record kind of the one line a logical backup carries its keys in (after the export's records).</summary>
    public const string Kind = "api_keys";

    /// <summary>The store's secret and every key (revoked ones too) with its hash; null when the store has no keys.</summary>
    public static async Task<ApiKeySet?> ReadAsync(IMemoryStore store, CancellationToken ct = default)
    {
        if (store is not IApiKeyStore keys || store is not IStoreTransfer transfer)
        {
            return null;
        }
        var listed = await keys.ListApiKeysAsync(null, ct).ConfigureAwait(false);
        var secret = listed.Count == 0 ? null : await keys.GetApiKeySecretAsync(create: false, ct).ConfigureAwait(false);
        if (secret is null)
        {
            return null;
        }
        await using var reader = await transfer.OpenExportAsync(null, ct).ConfigureAwait(false);
        var hashes = await reader.ReadApiKeyHashesAsync(ct).ConfigureAwait(false);
        return new ApiKeySet(secret, [.. listed.Where(k => hashes.ContainsKey(k.Id)).Select(k => new ApiKeyWithHash(k, hashes[k.Id]))]);
    }

    /// <summary>
    /// Puts <paramref name="set"/> into <paramref name="target"/>: its secret, then each key the target does not have
    /// (by id) with its revocation and last use. A target holding keys of its own under another secret keeps them, and
    /// none of the set's is added (said in the result).
    /// </summary>
    public static async Task<ApiKeyTransferResult> WriteAsync(IMemoryStore target, ApiKeySet set, CancellationToken ct = default)
    {
        if (target is not IApiKeyStore to || target is not IStoreTransfer transfer)
        {
            return new ApiKeyTransferResult(0, set.Keys.Count, $"the {target.Kind} store keeps no API keys");
        }
        var targetSecret = await to.GetApiKeySecretAsync(create: false, ct).ConfigureAwait(false);
        var existing = await to.ListApiKeysAsync(null, ct).ConfigureAwait(false);
        var sameSecret = targetSecret is not null && targetSecret.AsSpan().SequenceEqual(set.Secret);
        if (!sameSecret && targetSecret is not null && existing.Count > 0)
        {
            return new ApiKeyTransferResult(0, set.Keys.Count,
                $"the target has {existing.Count} API keys of its own, hashed with another secret: the source's {set.Keys.Count} keys were not copied");
        }
        if (!sameSecret)
        {
            await transfer.SetMetaAsync("api_key_secret", Convert.ToHexStringLower(set.Secret), ct).ConfigureAwait(false);
        }
        var present = existing.Select(k => k.Id).ToHashSet(StringComparer.Ordinal);
        int copied = 0, skipped = 0;
        foreach (var (key, hash) in set.Keys)
        {
            if (!present.Add(key.Id))
            {
                skipped++;
                continue;
            }
            await to.InsertApiKeyAsync(key, hash, ct).ConfigureAwait(false);
            if (key.RevokedAt is { } revoked)
            {
                await to.RevokeApiKeyAsync(key.Id, revoked, ct).ConfigureAwait(false);
            }
            if (key.LastUsedAt is { } used)
            {
                await to.TouchApiKeyAsync(key.Id, used, ct).ConfigureAwait(false);
            }
            copied++;
        }
        return new ApiKeyTransferResult(copied, skipped, null);
    }

    /// <summary>The backup line: <c>{"kind":"api_keys","secret":"…hex…","keys":[{…key…,"hash":"…base64…"}]}</c>.</summary>
    public static byte[] ToLine(ApiKeySet set) =>
        JsonSerializer.SerializeToUtf8Bytes(new ApiKeysLine(Kind, Convert.ToHexStringLower(set.Secret),
            [.. set.Keys.Select(k => new ApiKeyLine(k.Key, Convert.ToBase64String(k.Hash)))]), EngramJson.Options);

    /// <summary>Reads a backup line back; a line that is not one (a bad secret, a key without id, tenant or hash) throws <see cref="ValidationException"/>.</summary>
    public static ApiKeySet FromLine(JsonElement line)
    {
        ApiKeysLine? parsed;
        try
        {
            parsed = line.Deserialize<ApiKeysLine>(EngramJson.Options);
        }
        catch (JsonException ex)
        {
            throw new ValidationException("api_keys", "the API keys record does not parse: " + ex.Message);
        }
        if (parsed?.Secret is not { Length: 64 } hex || !IsHex(hex))
        {
            throw new ValidationException("secret", "the API keys record has no 32-byte hex secret");
        }
        var keys = new List<ApiKeyWithHash>();
        foreach (var item in parsed.Keys ?? [])
        {
            if (item?.Key is not { } key || string.IsNullOrEmpty(key.Id) || string.IsNullOrEmpty(key.Tenant) || string.IsNullOrEmpty(key.Prefix)
                || item.Hash is null)
            {
                throw new ValidationException("keys", "an API key of the record has no id, prefix, tenant or hash");
            }
            byte[] hash;
            try
            {
                hash = Convert.FromBase64String(item.Hash);
            }
            catch (FormatException)
            {
                throw new ValidationException("keys", $"the hash of API key {key.Id} is not base64");
            }
            keys.Add(new ApiKeyWithHash(key, hash));
        }
        return new ApiKeySet(Convert.FromHexString(hex), keys);
    }

    private static bool IsHex(string text) => text.All(char.IsAsciiHexDigit);

    private sealed record ApiKeysLine(string Kind, string Secret, IReadOnlyList<ApiKeyLine?>? Keys);

    private sealed record ApiKeyLine([property: System.Text.Json.Serialization.JsonPropertyName("key")] ApiKey Key, string Hash);
}

/// <summary>A store's API key secret and its keys with their keyed hashes.</summary>
public sealed record ApiKeySet(byte[] Secret, IReadOnlyList<ApiKeyWithHash> Keys);

public sealed record ApiKeyWithHash(ApiKey Key, byte[] Hash);

/// <summary>Keys added, keys not added (there already, or refused), and why none were when that happened.</summary>
public sealed record ApiKeyTransferResult(int Copied, int Skipped, string? Note);
