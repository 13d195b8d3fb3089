using Engram.Core.Security;

namespace Engram.Core.Common;

/// <summary>
/// Who is asking: the tenant every record and query is confined to, the actor recorded in history,
/// what the caller may do (<see cref="Role"/>) and the scope it is confined to within the tenant.
/// Interfaces build one per request from the API key (or the open-mode default); the services never
/// accept a tenant or a scope from anywhere else.
/// </summary>
public sealed record Caller(string Tenant, string Actor, Role Role = Role.Admin, KeyScope? Scope = null, string? KeyId = null)
{
    public const string DefaultTenant = "default";

    public static Caller Default(string actor) => new(DefaultTenant, actor);

    /// <summary>The background jobs' identity in history (e.g. the TTL sweeper).</summary>
    public static Caller System(string job, string tenant = DefaultTenant) => new(tenant, "system:" + job);

    /// <summary>True when the caller is confined to a scope (a scoped API key).</summary>
    public bool IsScoped => Scope is { IsEmpty: false };

    /// <summary>Throws <see cref="ForbiddenException"/> unless the caller's role includes <paramref name="needed"/>.</summary>
    public void Require(Role needed, string action)
    {
        if (Role < needed)
        {
            throw new ForbiddenException($"this key's role ({Role.Name()}) may not {action}; it needs {needed.Name()}");
        }
    }
}
