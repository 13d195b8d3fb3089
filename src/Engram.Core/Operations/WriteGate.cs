using Engram.Core.Common;

namespace Engram.Core.Operations;

/// <summary>
/// The one switch every write of memories, key-value state and the graph passes
/// (<see cref="Memories.MemoryService"/>, <see cref="KeyValue.KvService"/>, <see cref="Graph.GraphService"/>
/// call <see cref="Check"/> after the role check), so REST, MCP and the CLI's in-process commands are covered
/// by construction. Two reasons close it: read-only mode (READONLY_MODE, <c>POST /v1/admin/readonly</c>) and
/// load shedding when the process is over its memory budget (the server's memory monitor). Reads never consult it.
/// </summary>
/// <remarks>
/// Not gated: API key management and the audit log (an operator must be able to revoke a leaked key during an
/// incident, read-only or not), and the server's own upkeep (the TTL sweeper, index snapshots, access counts,
/// persisted vectors), which keeps the store consistent rather than adding content. The TTL sweeper pauses in
/// read-only mode, so a read-only store's content does not change at all.
/// </remarks>
public sealed class WriteGate
{
    private volatile bool _readOnly;
    private volatile string? _shedding;

    /// <summary>True while every write is refused as read-only.</summary>
    public bool ReadOnly
    {
        get => _readOnly;
        set => _readOnly = value;
    }

    /// <summary>True while writes are shed because the process is over its memory budget.</summary>
    public bool Shedding => _shedding is not null;

    /// <summary>Why writes are shed (working set against budget), or null.</summary>
    public string? SheddingReason => _shedding;

    /// <summary>Starts shedding writes with <paramref name="reason"/> (null stops it).</summary>
    public void Shed(string? reason) => _shedding = reason;

    /// <summary>Throws <see cref="WritesRefusedException"/> when writes are closed; <paramref name="action"/> names the refused write.</summary>
    public void Check(string action)
    {
        if (_readOnly)
        {
            throw new WritesRefusedException(WriteRefusal.ReadOnly,
                $"the server is read-only: cannot {action}; reads keep working. An admin turns it off with POST /v1/admin/readonly {{\"enabled\":false}} (or by unsetting READONLY_MODE)");
        }
        if (_shedding is { } reason)
        {
            throw new WritesRefusedException(WriteRefusal.MemoryBudget,
                $"memory budget exceeded ({reason}): cannot {action}; writes resume when memory use is back under 85 % of the budget, reads keep working");
        }
    }
}

/// <summary>Why a write was refused by the <see cref="WriteGate"/>.</summary>
public enum WriteRefusal
{
    ReadOnly,
    MemoryBudget,
}

/// <summary>A write refused while the server is read-only or shedding load (HTTP 503; the CLI exits non-zero).</summary>
public sealed class WritesRefusedException(WriteRefusal reason, string detail)
    : EngramException(reason == WriteRefusal.ReadOnly ? "Read-only" : "Memory budget exceeded", detail)
{
    public WriteRefusal Reason { get; } = reason;
}
