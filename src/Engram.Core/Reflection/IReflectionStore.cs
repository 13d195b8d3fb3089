using Engram.Core.Memories;

namespace Engram.Core.Reflection;

/// <summary>
/// What reflections keep in the store (both backends): links between memories (<c>memory_links</c>: a reflection
/// <c>derived_from</c> its sources, a near-duplicate <c>duplicate_of</c> the memory kept) and one watermark per scope
/// (<c>reflection_watermarks</c>: the change-log position up to which the scope was reflected on).
/// </summary>
public interface IReflectionStore
{
    /// <summary>
    /// Every scope (tenant and exact user, agent, session and namespace) holding live memories that are not reflections,
    /// with the newest change-log position among them; only <paramref name="tenant"/>'s when given.
    /// </summary>
    Task<IReadOnlyList<ScopeActivity>> ListReflectionScopesAsync(string? tenant, CancellationToken ct = default);

    /// <summary>The watermarks of every scope (of <paramref name="tenant"/> when given), by <see cref="ReflectionScope.WatermarkKey"/>.</summary>
    Task<IReadOnlyDictionary<string, long>> ReadReflectionWatermarksAsync(string? tenant, CancellationToken ct = default);

    /// <summary>Sets the scope's watermark (never moves it back).</summary>
    Task SetReflectionWatermarkAsync(ReflectionScope scope, long seq, DateTimeOffset at, CancellationToken ct = default);

    /// <summary>
    /// Live memories of exactly <paramref name="scope"/> (not reflections) whose last change is after <paramref name="afterSeq"/>,
    /// oldest change first, with that change's position; at most <paramref name="max"/>.
    /// </summary>
    Task<IReadOnlyList<SequencedMemory>> ReadScopeChangesAsync(ReflectionScope scope, long afterSeq, int max, CancellationToken ct = default);

    /// <summary>Adds links (an existing identical link is kept as it is).</summary>
    Task AddLinksAsync(string tenant, IReadOnlyList<MemoryLink> links, CancellationToken ct = default);

    /// <summary>The links from and to <paramref name="memoryId"/>, oldest first.</summary>
    Task<IReadOnlyList<MemoryLink>> GetLinksAsync(string tenant, string memoryId, CancellationToken ct = default);

    /// <summary>
    /// The links of <paramref name="kind"/> pointing at <paramref name="targetId"/> (any target when null), newest first,
    /// at most <paramref name="max"/>, starting after the link <paramref name="before"/> (a position from an earlier page).
    /// </summary>
    Task<IReadOnlyList<MemoryLink>> ListLinksAsync(string tenant, string kind, string? targetId, int max, long? before, CancellationToken ct = default);
}

/// <summary>A scope and the newest change-log position of its (non-reflection) memories.</summary>
public sealed record ScopeActivity(ReflectionScope Scope, long LastSeq, int Memories);

/// <summary>A memory and the change-log position of its last change.</summary>
public sealed record SequencedMemory(Memory Memory, long Seq);

/// <summary>One link: <see cref="MemoryId"/> is <see cref="Kind"/> <see cref="TargetId"/> (a reflection derived_from a source).</summary>
public sealed record MemoryLink(string MemoryId, string Kind, string TargetId, DateTimeOffset CreatedAt)
{
    /// <summary>The link's position in the store (for paging); 0 before it is stored.</summary>
    public long Position { get; init; }
}

/// <summary>The kinds of <see cref="MemoryLink"/>.</summary>
public static class LinkKinds
{
    /// <summary>A reflection derived from a source memory.</summary>
    public const string DerivedFrom = "derived_from";

    /// <summary>A near-duplicate flagged (or merged) into the memory kept.</summary>
    public const string DuplicateOf = "duplicate_of";
}

/// <summary>One reflection scope: a tenant and the exact scope fields (null: not set) its memories carry.</summary>
public sealed record ReflectionScope(string Tenant, string? UserId, string? AgentId, string? SessionId, string? Namespace)
{
    /// <summary>The scope fields (values refuse control characters, so the separator occurs in none; '\u0001' marks an absent one).</summary>
    public string Key => string.Join('\u001f', Field(UserId), Field(AgentId), Field(SessionId), Field(Namespace));

    /// <summary>The tenant and <see cref="Key"/>: what <see cref="IReflectionStore.ReadReflectionWatermarksAsync"/> is keyed by.</summary>
    public string WatermarkKey => Tenant + "\u001e" + Key;

    public static ReflectionScope Of(string tenant, Memory memory) => new(tenant, memory.UserId, memory.AgentId, memory.SessionId, memory.Namespace);

    public bool Holds(Memory memory) => memory.UserId == UserId && memory.AgentId == AgentId && memory.SessionId == SessionId && memory.Namespace == Namespace;

    /// <summary>user_id=…, agent_id=…: for logs and reports; "(unscoped)" when no field is set.</summary>
    public override string ToString()
    {
        var parts = new[] { ("user_id", UserId), ("agent_id", AgentId), ("session_id", SessionId), ("namespace", Namespace) }
            .Where(p => p.Item2 is not null).Select(p => p.Item1 + "=" + p.Item2).ToList();
        return parts.Count == 0 ? "(unscoped)" : string.Join(", ", parts);
    }

    private static string Field(string? value) => value ?? "\u0001";
}
