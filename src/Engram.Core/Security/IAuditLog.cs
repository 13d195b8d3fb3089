namespace Engram.Core.Security;

/// <summary>
/// The audit log in the store: who did what, when, from where, to key changes, admin actions, bulk
/// deletes and denied requests. Bounded: the writer keeps the newest <c>maxRows</c> entries.
/// </summary>
public interface IAuditLog
{
    /// <summary>Appends the entries in one transaction and prunes the oldest beyond <paramref name="maxRows"/>.</summary>
    Task AppendAuditAsync(IReadOnlyList<AuditEntry> entries, int maxRows, CancellationToken ct = default);

    /// <summary>Newest first.</summary>
    Task<AuditPage> ReadAuditAsync(AuditQuery query, CancellationToken ct = default);
}

/// <summary>
/// One audit entry. <see cref="Actor"/> is <c>key:&lt;name or prefix&gt;</c>, <c>cli</c> or <c>anonymous</c>;
/// <see cref="Detail"/> is short and never holds a secret (nothing of a presented key).
/// </summary>
public sealed record AuditEntry(
    DateTimeOffset At,
    string Tenant,
    string Actor,
    string Action,
    string? Target,
    string Outcome,
    string? Remote = null,
    string? Detail = null)
{
    /// <summary>Position in the log (0 until stored); the cursor of <see cref="AuditQuery.Before"/>.</summary>
    public long Seq { get; init; }
}

/// <param name="Tenant">One tenant's entries, or every tenant's when null (the CLI).</param>
/// <param name="Action">An action (<c>key.create</c>), or a family ending in a dot or star (<c>key.</c>, <c>key.*</c>).</param>
/// <param name="Before">Entries older than this <see cref="AuditEntry.Seq"/> (the next page).</param>
public sealed record AuditQuery(string? Tenant = null, DateTimeOffset? Since = null, string? Action = null, int Limit = 100, long? Before = null);

public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? NextCursor);

/// <summary>The action names the audit log records.</summary>
public static class AuditActions
{
    public const string KeyCreate = "key.create";
    public const string KeyRevoke = "key.revoke";
    public const string KeyRotate = "key.rotate";
    public const string MemoriesBulkDelete = "memories.bulk_delete";
    public const string KvCleanup = "kv.cleanup";
    public const string AuthDenied = "auth.denied";
    public const string ActForTenant = "admin.act_for_tenant";

    public const string Ok = "ok";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
}
