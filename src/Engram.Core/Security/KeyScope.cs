namespace Engram.Core.Security;

/// <summary>
/// The scope an API key is confined to under its tenant (<c>--scope user_id=U</c>, <c>agent_id=A</c>).
/// A caller with a scope sees and writes only memories in it; null fields do not restrict.
/// </summary>
public sealed record KeyScope(string? UserId, string? AgentId)
{
    public bool IsEmpty => UserId is null && AgentId is null;

    /// <summary><c>user_id=U</c>, <c>agent_id=A</c> or both joined by a comma; empty when unscoped.</summary>
    public override string ToString() => string.Join(',',
        new[] { UserId is null ? null : "user_id=" + UserId, AgentId is null ? null : "agent_id=" + AgentId }.Where(p => p is not null));
}
