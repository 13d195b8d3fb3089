using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;

namespace Engram.Server.Http;

/// <summary>
/// The least role an endpoint needs, as endpoint metadata read by the authentication gate. A route
/// with no rule is treated as admin-only (fail closed), and a test checks that every route declares one.
/// </summary>
public sealed record AccessRule(Role? MinimumRole)
{
    /// <summary>Answered without a key even when keys exist (liveness and readiness probes only).</summary>
    public static AccessRule Public { get; } = new((Role?)null);

    public bool IsPublic => MinimumRole is null;
}

internal static class Access
{
    public static TBuilder Requires<TBuilder>(this TBuilder builder, Role role) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new AccessRule(role));

    public static TBuilder Public<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(AccessRule.Public);
}
