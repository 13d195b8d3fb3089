namespace Engram.Core.Common;

/// <summary>A 64-bit value that only moves forward under concurrent writers (a change-log position, a high-water mark).</summary>
public static class InterlockedMax
{
    /// <summary>Sets <paramref name="location"/> to <paramref name="value"/> when that is higher, atomically; returns whether it moved.</summary>
    public static bool Raise(ref long location, long value)
    {
        var current = Interlocked.Read(ref location);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref location, value, current);
            if (seen == current)
            {
                return true;
            }
            current = seen;
        }
        return false;
    }
}
