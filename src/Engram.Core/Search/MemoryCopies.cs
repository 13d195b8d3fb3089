using System.Runtime.InteropServices;
using System.Text.Json;
using Engram.Core.Memories;

namespace Engram.Core.Search;

/// <summary>
/// Copies of the memories most recently indexed or returned by search, bounded by an estimate of their bytes (least
/// recently used out first), so that search can still answer while the database is away: the indexes rank, and the
/// results come from here instead of the store (marked stale). Only an index hit is ever looked up, so a copy of a
/// memory deleted meanwhile is never returned (the index no longer has it); a copy never replaces a newer version.
/// Used with the PostgreSQL store, whose database can be away while Engram runs; a SQLite store is a local file.
/// </summary>
public sealed class MemoryCopies
{
    /// <summary>Per copy beyond its strings: the record, its lists, the dictionary and list nodes.</summary>
    public const int OverheadBytes = 400;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _byId = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _order = new();
    private long _bytes;

    public MemoryCopies(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        CapacityBytes = capacityBytes;
    }

    public long CapacityBytes { get; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Keeps a copy of <paramref name="memory"/> of <paramref name="tenant"/>, unless a newer version is kept already.</summary>
    public void Put(string tenant, Memory memory)
    {
        var bytes = SizeOf(memory);
        if (bytes > CapacityBytes)
        {
            return;
        }
        lock (_lock)
        {
            if (_byId.TryGetValue(memory.Id, out var node))
            {
                if (node.Value.Memory.Version > memory.Version)
                {
                    return;
                }
                Unlink(node);
            }
            _byId[memory.Id] = _order.AddFirst(new Entry(tenant, memory, bytes));
            _bytes += bytes;
            while (_bytes > CapacityBytes && _order.Last is { } oldest)
            {
                _byId.Remove(oldest.Value.Memory.Id);
                Unlink(oldest);
            }
        }
    }

    public void Remove(string id)
    {
        lock (_lock)
        {
            if (_byId.Remove(id, out var node))
            {
                Unlink(node);
            }
        }
    }

    /// <summary>The copies of <paramref name="ids"/> that <paramref name="tenant"/> owns (the rest are not kept).</summary>
    public List<Memory> GetMany(string tenant, IEnumerable<string> ids)
    {
        var found = new List<Memory>();
        lock (_lock)
        {
            foreach (var id in ids)
            {
                if (_byId.TryGetValue(id, out var node) && node.Value.Tenant == tenant)
                {
                    found.Add(node.Value.Memory);
                }
            }
        }
        return found;
    }

    /// <summary>Drops every copy; returns how many there were.</summary>
    public int Clear()
    {
        lock (_lock)
        {
            var count = _byId.Count;
            _byId.Clear();
            _order.Clear();
            Interlocked.Exchange(ref _bytes, 0);
            return count;
        }
    }

    private void Unlink(LinkedListNode<Entry> node)
    {
        _order.Remove(node);
        _bytes -= node.Value.Bytes;
    }

    /// <summary>An estimate: UTF-16 strings, the metadata's JSON bytes, the fixed overhead.</summary>
    private static long SizeOf(Memory m)
    {
        long chars = m.Id.Length + m.Content.Length + m.ContentHash.Length + m.Type.Length
            + (m.UserId?.Length ?? 0) + (m.AgentId?.Length ?? 0) + (m.SessionId?.Length ?? 0) + (m.Namespace?.Length ?? 0) + (m.Source?.Length ?? 0);
        foreach (var tag in m.Tags)
        {
            chars += tag.Length + 12;
        }
        foreach (var entity in m.Entities)
        {
            chars += entity.Length + 12;
        }
        var metadata = m.Metadata.ValueKind == JsonValueKind.Undefined ? 0 : JsonMarshal.GetRawUtf8Value(m.Metadata).Length;
        return (chars * 2) + metadata + OverheadBytes;
    }

    private readonly record struct Entry(string Tenant, Memory Memory, long Bytes);
}
