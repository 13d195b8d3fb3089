using BenchmarkDotNet.Attributes;
using Engram.Core.Common;

namespace Engram.Benchmarks.Micro;

/// <summary>Every new memory gets a ULID; this keeps its cost and allocations visible.</summary>
[MemoryDiagnoser]
public class UlidBenchmarks
{
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    [Benchmark]
    public string NewUlid() => Ulid.NewUlid(_now);
}
