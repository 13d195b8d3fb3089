namespace Engram.Core.Security;

/// <summary>
/// An API key as listed: everything but the secret. The key itself is shown once, when it is
/// created or rotated, and only a keyed hash of it is stored.
/// </summary>
public sealed record ApiKey(
    string Id,
    string Prefix,
    string Tenant,
    Role Role,
    KeyScope? Scope,
    string? Name,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsedAt)
{
    public bool IsRevoked => RevokedAt is not null;

    public bool IsExpiredAt(DateTimeOffset now) => ExpiresAt is { } expires && expires <= now;

    /// <summary>What history and the audit log record for requests made with this key.</summary>
    public string Actor => "key:" + (Name ?? Prefix);
}

/// <summary>What a new key is for; the tenant is the caller's (or the CLI's <c>--tenant</c>), never a request body's.</summary>
public sealed record NewApiKey(string Tenant, Role Role, KeyScope? Scope = null, string? Name = null, DateTimeOffset? ExpiresAt = null);

/// <summary>A key just created or rotated: the plain <see cref="Secret"/> exists only here and is never stored.</summary>
public sealed record CreatedApiKey(ApiKey Key, string Secret);
