namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// SplitMix64: a tiny, allocation-free generator whose output is fixed by its seed on every runtime,
/// so memory <c>i</c> of a corpus can be regenerated on its own (by queries, by a sender) without
/// holding the corpus in memory.
/// </summary>
public struct SplitMix(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The stream for item <paramref name="index"/> of the corpus seeded with <paramref name="seed"/>.</summary>
    public static SplitMix For(int seed, long index)
    {
        var mixed = new SplitMix(((ulong)(uint)seed << 32) ^ ((ulong)index * 0xD1B54A32D192ED03UL));
        return new SplitMix(mixed.NextUInt64());
    }

    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>0 ≤ result &lt; <paramref name="max"/>.</summary>
    public int Next(int max) => (int)((NextUInt64() >> 1) % (ulong)max);

    public long NextInt64(long max) => (long)((NextUInt64() >> 1) % (ulong)max);

    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
