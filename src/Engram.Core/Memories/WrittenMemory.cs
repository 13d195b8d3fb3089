using System.Diagnostics.CodeAnalysis;

namespace Engram.Core.Memories;

/// <summary>A memory as a write returns it: the memory, the change-log sequence of the write, and whether it was an existing duplicate.</summary>
public sealed record WrittenMemory : Memory
{
    [SetsRequiredMembers]
    public WrittenMemory(WriteResult result) : base(result.Memory)
    {
        Seq = result.Seq;
        Duplicate = result.Duplicate;
    }

    /// <summary>Sequence number of the write in the change log (for a duplicate: of the existing memory's last change).</summary>
    public long Seq { get; init; }

    public bool Duplicate { get; init; }
}
