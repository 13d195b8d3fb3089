namespace Engram.Core.Common;

/// <summary>
/// Who is asking: the tenant every record and query is confined to, and the actor recorded in
/// history. Interfaces build one per request; the store never accepts a tenant from anywhere else.
/// </summary>
public sealed record Caller(string Tenant, string Actor)
{
    public const string DefaultTenant = "default";

    public static Caller Default(string actor) => new(DefaultTenant, actor);

    /// <summary>The background jobs' identity in history (e.g. the TTL sweeper).</summary>
    public static Caller System(string job, string tenant = DefaultTenant) => new(tenant, "system:" + job);
}
