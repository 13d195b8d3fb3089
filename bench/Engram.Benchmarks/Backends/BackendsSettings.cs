namespace Engram.Benchmarks.Backends;

/// <summary>The <c>backends</c> benchmark's options.</summary>
public sealed record BackendsSettings
{
    /// <summary>The loaded store's size (search latency, RAM, write-to-searchable).</summary>
    public int Memories { get; init; } = 100_000;

    /// <summary>Concurrent clients of the "several clients" ingest row.</summary>
    public int Clients { get; init; } = 4;

    public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(3);

    public int Queries { get; init; } = 1_000;

    /// <summary>Distinct queries before each timed pass: with 50, tiered JIT and cold store pages made the first pass twice as slow (bench/README.md, e2e).</summary>
    public int WarmUpQueries { get; init; } = 1_000;

    /// <summary>Writes whose time to become searchable is measured, per row.</summary>
    public int Probes { get; init; } = 100;

    public int Seed { get; init; } = 42;

    /// <summary>Where the stores (and the PostgreSQL cluster) live; /var/tmp is a real disk here, so fsync costs what it costs.</summary>
    public string DataRoot { get; init; } = "/var/tmp/engram-bench";

    /// <summary>Only these backends (e.g. after a PostgreSQL-side change, only PostgreSQL).</summary>
    public string[] Backends { get; init; } = ["sqlite", "postgres"];
}
