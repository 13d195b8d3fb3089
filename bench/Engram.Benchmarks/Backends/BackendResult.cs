using Engram.Benchmarks.Store;

namespace Engram.Benchmarks.Backends;

/// <summary>Everything measured on one backend.</summary>
public sealed record BackendResult(string Name, IReadOnlyList<(string Scenario, Throughput Result)> Ingest, BackendSearchResult Search, VisibilityResult Visibility);
