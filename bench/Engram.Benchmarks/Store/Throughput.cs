namespace Engram.Benchmarks.Store;

/// <summary>How many memories a timed run completed, and in how long.</summary>
public readonly record struct Throughput(long Items, TimeSpan Elapsed)
{
    public double PerSecond => Items / Elapsed.TotalSeconds;
}
