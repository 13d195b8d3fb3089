using System.Collections.Concurrent;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Memories;

namespace Engram.Core.Security;

/// <summary>
/// API keys: create, list, revoke and rotate them (each recorded in the audit log), and authenticate a
/// presented key. Authentication is a keyed hash and a dictionary probe; the store is asked only for a
/// key not seen yet, and once a second for the keys' generation, so a key revoked by another process
/// (the CLI on the same data folder) stops working within about a second. Changes made through this
/// instance take effect at once.
/// </summary>
public sealed class ApiKeyService
{
    private const long RefreshIntervalMs = 1000;
    private const long TouchIntervalMs = 60_000;

    private readonly IApiKeyStore _store;
    private readonly AuditTrail _audit;
    private readonly TimeProvider _clock;
    private readonly int _cacheSize;
    private readonly MemoryValidator _validator = new(new MemoryLimits());
    private readonly ConcurrentDictionary<KeyHash, CachedKey> _cache = new();
    private byte[]? _secret;
    private long _generation = -1;
    private int _activeKeys;
    private long _checkedAtTicks = long.MinValue;
    private int _refreshing;

    public ApiKeyService(IApiKeyStore store, AuditTrail audit, TimeProvider? clock = null, int cacheSize = 10_000)
    {
        _store = store;
        _audit = audit;
        _clock = clock ?? TimeProvider.System;
        _cacheSize = cacheSize;
    }

    /// <summary>Whether any key that is not revoked exists, as of the last check (at most about a second old).</summary>
    public bool HasActiveKeys => Volatile.Read(ref _activeKeys) > 0;

    public int ActiveKeys => Volatile.Read(ref _activeKeys);

    /// <summary>Keys held in memory after their first use (at most the configured KeyCacheSize).</summary>
    public int CachedKeys => _cache.Count;

    /// <summary>The bound on <see cref="CachedKeys"/> (Engram:Auth:KeyCacheSize, capped by the memory budget).</summary>
    public int CacheCapacity => _cacheSize;

    /// <summary>Empties the key cache (the next request of each key looks it up again); returns how many went.</summary>
    public int ClearCache()
    {
        var count = _cache.Count;
        _cache.Clear();
        return count;
    }

    /// <summary>Reads the keys' state from the store now (start-up, and after a change made here).</summary>
    public async Task RefreshAsync(CancellationToken ct = default)
    {
        var state = await _store.GetApiKeyStateAsync(ct).ConfigureAwait(false);
        if (state.Generation != Interlocked.Read(ref _generation))
        {
            _cache.Clear();
            Interlocked.Exchange(ref _generation, state.Generation);
        }
        Volatile.Write(ref _activeKeys, state.ActiveKeys);
        Interlocked.Exchange(ref _checkedAtTicks, Environment.TickCount64);
    }

    /// <summary>Whether the next <see cref="RefreshIfDueAsync"/> reads the store (callers on a thread that must not block move off it first).</summary>
    public bool RefreshDue => Environment.TickCount64 - Interlocked.Read(ref _checkedAtTicks) >= RefreshIntervalMs;

    /// <summary>Refreshes when the last check is more than a second old; only one caller at a time does it, the others go on.</summary>
    public ValueTask RefreshIfDueAsync(CancellationToken ct = default)
    {
        if (Environment.TickCount64 - Interlocked.Read(ref _checkedAtTicks) < RefreshIntervalMs || Interlocked.CompareExchange(ref _refreshing, 1, 0) != 0)
        {
            return ValueTask.CompletedTask;
        }
        return new ValueTask(RefreshOnceAsync(ct));
    }

    private async Task RefreshOnceAsync(CancellationToken ct)
    {
        try
        {
            await RefreshAsync(ct).ConfigureAwait(false);
        }
        catch (Storage.StoreException ex) when (Storage.StoreFailure.IsUnavailable(ex))
        {
            // The store is away: keep what the last refresh knew (cached keys go on working, so searches answer from
            // the indexes) and try again in a second, rather than fail the request that happened to come due.
            Interlocked.Exchange(ref _checkedAtTicks, Environment.TickCount64);
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }

    /// <summary>
    /// The key <paramref name="presented"/> names, when it is known, not revoked and not expired; else
    /// null (the caller answers all of these alike).
    /// </summary>
    public async ValueTask<ApiKey?> AuthenticateAsync(string presented, CancellationToken ct = default)
    {
        await RefreshIfDueAsync(ct).ConfigureAwait(false);
        var secret = _secret ??= await _store.GetApiKeySecretAsync(create: false, ct).ConfigureAwait(false);
        if (secret is null || !ApiKeyFormat.TryHash(secret, presented, out var hash))
        {
            return null;
        }
        var generation = Interlocked.Read(ref _generation);
        if (!_cache.TryGetValue(hash, out var cached) || cached.Generation != generation)
        {
            var found = await _store.FindApiKeyByHashAsync(hash.ToBytes(), ct).ConfigureAwait(false);
            if (found is null)
            {
                return null; // unknown keys are not cached: a flood of random keys must not evict the real ones
            }
            if (_cache.Count >= _cacheSize)
            {
                // Full: start over rather than track recency on the authentication path. Only keys that exist are
                // cached, so this happens only with more live keys than the cache holds; each refills on its next request.
                Operations.BoundOverflow.Count("api_keys", _cache.Count);
                _cache.Clear();
            }
            cached = new CachedKey(found, generation);
            _cache[hash] = cached;
        }
        var key = cached.Key;
        var now = _clock.GetUtcNow();
        if (key.IsRevoked || key.IsExpiredAt(now))
        {
            return null;
        }
        TouchIfDue(cached, now);
        return key;
    }

    public async Task<CreatedApiKey> CreateAsync(NewApiKey request, string actor, string? remote = null, CancellationToken ct = default)
    {
        var now = _clock.GetUtcNow();
        var tenant = TenantNames.Require(request.Tenant, "tenant");
        var scope = ValidScope(request.Scope);
        var name = ValidName(request.Name);
        if (request.ExpiresAt is { } expires && expires <= now)
        {
            throw new ValidationException("expires_at", "expires_at must be in the future");
        }
        var secret = await SecretAsync(ct).ConfigureAwait(false);
        var plain = ApiKeyFormat.NewKey();
        var key = new ApiKey(Ulid.NewUlid(now), ApiKeyFormat.PrefixOf(plain), tenant, request.Role, scope, name, now, request.ExpiresAt, null, null);
        await _store.InsertApiKeyAsync(key, HashOf(secret, plain), ct).ConfigureAwait(false);
        await _audit.WriteAsync(new AuditEntry(now, tenant, actor, AuditActions.KeyCreate, Describe(key), AuditActions.Ok, remote,
            $"role {key.Role.Name()}{(scope is null ? "" : ", scope " + scope)}"), ct).ConfigureAwait(false);
        await RefreshAsync(ct).ConfigureAwait(false);
        return new CreatedApiKey(key, plain);
    }

    /// <summary>Every key, oldest first (one tenant's, or all when <paramref name="tenant"/> is null).</summary>
    public Task<IReadOnlyList<ApiKey>> ListAsync(string? tenant, CancellationToken ct = default) => _store.ListApiKeysAsync(tenant, ct);

    /// <summary>Revokes the key named by its id or prefix (in <paramref name="tenant"/> when given); revoking a revoked key is not an error.</summary>
    public async Task<ApiKey> RevokeAsync(string idOrPrefix, string? tenant, string actor, string? remote = null, CancellationToken ct = default)
    {
        var key = await FindOneAsync(idOrPrefix, tenant, ct).ConfigureAwait(false);
        var now = _clock.GetUtcNow();
        if (await _store.RevokeApiKeyAsync(key.Id, now, ct).ConfigureAwait(false))
        {
            key = key with { RevokedAt = now };
            await _audit.WriteAsync(new AuditEntry(now, key.Tenant, actor, AuditActions.KeyRevoke, Describe(key), AuditActions.Ok, remote), ct).ConfigureAwait(false);
        }
        await RefreshAsync(ct).ConfigureAwait(false);
        return key;
    }

    /// <summary>A new secret for the key (same tenant, role, scope, name and expiry); the old one stops working at once.</summary>
    public async Task<CreatedApiKey> RotateAsync(string idOrPrefix, string? tenant, string actor, string? remote = null, CancellationToken ct = default)
    {
        var old = await FindOneAsync(idOrPrefix, tenant, ct).ConfigureAwait(false);
        if (old.IsRevoked)
        {
            throw new ConflictException($"key {old.Id} ({old.Prefix}) is revoked; create a new key instead");
        }
        var now = _clock.GetUtcNow();
        var secret = await SecretAsync(ct).ConfigureAwait(false);
        var plain = ApiKeyFormat.NewKey();
        var key = old with { Id = Ulid.NewUlid(now), Prefix = ApiKeyFormat.PrefixOf(plain), CreatedAt = now, RevokedAt = null, LastUsedAt = null };
        await _store.RotateApiKeyAsync(old.Id, key, HashOf(secret, plain), ct).ConfigureAwait(false);
        await _audit.WriteAsync(new AuditEntry(now, key.Tenant, actor, AuditActions.KeyRotate, Describe(old), AuditActions.Ok, remote,
            $"replaced by {Describe(key)}"), ct).ConfigureAwait(false);
        await RefreshAsync(ct).ConfigureAwait(false);
        return new CreatedApiKey(key, plain);
    }

    private async Task<ApiKey> FindOneAsync(string idOrPrefix, string? tenant, CancellationToken ct)
    {
        var text = idOrPrefix.Trim();
        if (text.Length == 0 || text.Length > 64)
        {
            throw new ValidationException("id", "name a key by its id or its prefix (egm_xxxxxxxx)");
        }
        if (!text.StartsWith(ApiKeyFormat.Marker, StringComparison.Ordinal) && text.Length == ApiKeyFormat.PrefixChars && !Ulid.IsValid(text))
        {
            text = ApiKeyFormat.Marker + text;
        }
        var found = await _store.FindApiKeysAsync(text, tenant, ct).ConfigureAwait(false);
        return found.Count switch
        {
            0 => throw new NotFoundException($"no API key {text}"),
            1 => found[0],
            _ => throw new ConflictException($"{found.Count} keys have the prefix {text}; name one by its id"),
        };
    }

    private void TouchIfDue(CachedKey cached, DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var last = Interlocked.Read(ref cached.TouchedAtMs);
        if (nowMs - last < TouchIntervalMs || Interlocked.CompareExchange(ref cached.TouchedAtMs, nowMs, last) != last)
        {
            return;
        }
        _ = TouchAsync(cached.Key.Id, now);
    }

    private async Task TouchAsync(string id, DateTimeOffset at)
    {
        try
        {
            await _store.TouchApiKeyAsync(id, at).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is Storage.StoreException or ObjectDisposedException or InvalidOperationException)
        {
            // Bookkeeping only: a failed or late (store closing) touch is retried at the next use a minute on.
        }
    }

    private async Task<byte[]> SecretAsync(CancellationToken ct) =>
        _secret ??= await _store.GetApiKeySecretAsync(create: true, ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException("the store did not create a key secret");

    private static byte[] HashOf(byte[] secret, string plain) =>
        ApiKeyFormat.TryHash(secret, plain, out var hash) ? hash.ToBytes() : throw new InvalidOperationException("a generated key has the wrong shape");

    private KeyScope? ValidScope(KeyScope? scope)
    {
        if (scope is null || scope.IsEmpty)
        {
            return null;
        }
        return new KeyScope(_validator.Field("user_id", scope.UserId), _validator.Field("agent_id", scope.AgentId));
    }

    private static string? ValidName(string? name)
    {
        if (name is null)
        {
            return null;
        }
        if (name.Length is 0 or > 64 || name.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)) || !UnicodeText.IsValid(name))
        {
            throw new ValidationException("name", "name must be 1-64 characters without white space or control characters");
        }
        // A key's name is how people tell keys apart in listings and logs: "ci" and "c\u200Bi" would look like one.
        UnicodeText.RequireVisible(name, "name");
        return name;
    }

    private static string Describe(ApiKey key) => $"{key.Id} ({key.Prefix}{(key.Name is null ? "" : ", " + key.Name)})";

    /// <summary>A key as the cache holds it; the generation it was read in, and when its use was last recorded.</summary>
    private sealed class CachedKey(ApiKey key, long generation)
    {
        public ApiKey Key { get; } = key;

        public long Generation { get; } = generation;

        public long TouchedAtMs = key.LastUsedAt?.ToUnixTimeMilliseconds() ?? 0;
    }
}
