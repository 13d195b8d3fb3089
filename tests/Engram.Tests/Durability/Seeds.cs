namespace Engram.Tests.Durability;

/// <summary>
/// Derives per-cycle and per-writer seeds from the run's seed. Not <see cref="HashCode.Combine{T1,T2}"/>:
/// that is salted per process, and a printed seed must replay the same choices in the next run.
/// </summary>
public static class Seeds
{
    public static int Derive(int seed, int a, int b = 0)
    {
        unchecked
        {
            var x = (uint)seed * 2_654_435_761u;
            x = (x ^ (uint)a) * 2_246_822_519u;
            x = (x ^ (uint)b) * 3_266_489_917u;
            return (int)(x ^ (x >> 15));
        }
    }
}
