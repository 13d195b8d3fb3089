namespace Engram.Benchmarks.Retrieval;

/// <summary>Everything measured at one corpus size.</summary>
public sealed record E2eResult(
    long Size, IngestResult Ingest, MemorySnapshot Empty, MemorySnapshot Indexed, MemorySnapshot AfterSearches,
    IReadOnlyList<SearchRow> Searches, IReadOnlyList<ColdStartRow> ColdStarts);
