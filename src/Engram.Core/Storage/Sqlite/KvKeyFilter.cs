using System.IO.Hashing;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Which keys the key-value tables or the write-behind may hold a state for: a blocked Bloom filter (each key sets 6 bits
/// of one 64-byte block, so a look-up reads one cache line). "No" is certain; "maybe" is wrong for about 1 key in 1,000
/// while it holds at most <see cref="Capacity"/> keys. A GET of a key that was never written, and the first SET of a
/// new key, then need no SQLite read to learn that the key has no state (a swarm's task keys are new on every SET).
/// Keys are only added (a deleted key keeps its history, so it keeps a state too); the write-behind builds a larger
/// filter when this one is full. Adds come from one thread at a time (the writer's), look-ups from any.
/// </summary>
internal sealed class KvKeyFilter
{
    /// <summary>Bits per key at <see cref="Capacity"/>: with 6 bits set in a 512-bit block, a false "maybe" ~1 in 1,000.</summary>
    private const int BitsPerKey = 16;

    private const int Probes = 6;

    /// <summary>256 KB: 131,072 keys.</summary>
    private const long MinBits = 1L << 21;

    /// <summary>512 MB: past 268 million keys the filter says "maybe" more often instead of growing.</summary>
    private const long MaxBits = 1L << 32;

    private readonly ulong[] _words;
    private readonly int _blockMask;
    private long _added;

    public KvKeyFilter(long expectedKeys)
    {
        var bits = (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Clamp(expectedKeys * BitsPerKey, MinBits, MaxBits));
        _words = new ulong[bits / 64];
        _blockMask = (int)(bits / 512 - 1);
        Capacity = bits / BitsPerKey;
    }

    /// <summary>Keys it holds with its designed false-"maybe" rate.</summary>
    public long Capacity { get; }

    /// <summary>Keys added (a key added twice counts twice).</summary>
    public long Added => Volatile.Read(ref _added);

    public bool Full => Added > Capacity;

    public long Bytes => _words.LongLength * sizeof(ulong);

    public void Add(string tenant, ReadOnlySpan<char> key) => Add(Hash(tenant, key));

    public void Add(ulong hash)
    {
        var block = Block(hash);
        var (first, step) = Steps(hash);
        for (var i = 0; i < Probes; i++)
        {
            var bit = (first + i * step) & 511;
            // Interlocked: a reader on another thread sees every bit of a key once its Add returned.
            Interlocked.Or(ref _words[block + (int)(bit >> 6)], 1UL << (int)(bit & 63));
        }
        Interlocked.Increment(ref _added);
    }

    /// <summary>False only for a key never added.</summary>
    public bool MayContain(string tenant, ReadOnlySpan<char> key)
    {
        var hash = Hash(tenant, key);
        var block = Block(hash);
        var (first, step) = Steps(hash);
        for (var i = 0; i < Probes; i++)
        {
            var bit = (first + i * step) & 511;
            if ((Volatile.Read(ref _words[block + (int)(bit >> 6)]) & (1UL << (int)(bit & 63))) == 0)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The key's hash: its UTF-16 code units seeded with the tenant's (the write-behind's slots hold strings).</summary>
    public static ulong Hash(string tenant, ReadOnlySpan<char> key) =>
        XxHash3.HashToUInt64(MemoryMarshal.AsBytes(key), (long)XxHash3.HashToUInt64(MemoryMarshal.AsBytes(tenant.AsSpan())));

    private int Block(ulong hash) => ((int)(hash >> 40) & _blockMask) * 8;

    private static (uint First, uint Step) Steps(ulong hash) => ((uint)hash & 511, ((uint)hash >> 9) | 1);
}
