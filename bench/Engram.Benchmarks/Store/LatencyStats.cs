using System.Diagnostics;

namespace Engram.Benchmarks.Store;

/// <summary>Percentiles (nearest rank) of latencies recorded as Stopwatch ticks.</summary>
public sealed class LatencyStats
{
    private readonly double[] _sortedMs;

    public LatencyStats(IEnumerable<long> ticks)
    {
        _sortedMs = ticks.Select(t => t * 1000.0 / Stopwatch.Frequency).Order().ToArray();
        if (_sortedMs.Length == 0)
        {
            throw new ArgumentException("no latencies recorded", nameof(ticks));
        }
    }

    public int Count => _sortedMs.Length;

    public double Percentile(double p)
    {
        var rank = (int)Math.Ceiling(p / 100.0 * _sortedMs.Length);
        return _sortedMs[Math.Clamp(rank - 1, 0, _sortedMs.Length - 1)];
    }
}
