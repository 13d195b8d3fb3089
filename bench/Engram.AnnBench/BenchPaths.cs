namespace Engram.AnnBench;

/// <summary>Where the benchmark keeps what it is slow to make: the native hnswlib binary and the embedded sentence vectors.</summary>
internal static class BenchPaths
{
    public static string CacheRoot => Environment.GetEnvironmentVariable("ENGRAM_BENCH_CACHE") ?? "/var/tmp/engram-bench";
}
