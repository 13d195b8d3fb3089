namespace Engram.Core.Memories;

/// <summary>The scope fields a memory can carry under its tenant. Null means "not scoped by this".</summary>
public readonly record struct MemoryScope(string? UserId, string? AgentId, string? SessionId, string? Namespace)
{
    public bool IsEmpty => UserId is null && AgentId is null && SessionId is null && Namespace is null;

    public static MemoryScope Of(Memory memory) => new(memory.UserId, memory.AgentId, memory.SessionId, memory.Namespace);
}
