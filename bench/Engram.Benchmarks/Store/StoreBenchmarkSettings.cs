namespace Engram.Benchmarks.Store;

/// <summary>How long and how hard the store harness runs; <c>--quick</c> shortens the timed runs only.</summary>
public sealed record StoreBenchmarkSettings(TimeSpan Duration, TimeSpan WarmUp, int Reads, int Readers, int WritersDuringReads, int Seed, string DataRoot)
{
    public static StoreBenchmarkSettings Full { get; } = new(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(1), 10_000, 16, 4, 20_261_121, BenchDataFolder.DefaultRoot);

    public static StoreBenchmarkSettings Quick { get; } = Full with { Duration = TimeSpan.FromSeconds(1), WarmUp = TimeSpan.FromSeconds(0.3) };
}
