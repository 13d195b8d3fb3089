using System.Diagnostics;
using Engram.Core.Search;

namespace Engram.Benchmarks.Retrieval;

/// <summary>One way of starting a server on an existing store, timed until its first search returns.</summary>
public sealed record ColdStartRow(string Mode, TimeSpan? Listening, TimeSpan? FirstSearch, int Documents, MemorySnapshot? Memory, string? Note = null);

/// <summary>
/// Cold start: a new server on the folder of a stopped one. The clock runs from building the host
/// to the first <c>POST /v1/search</c> answered (a search waits for the initial index build).
/// </summary>
public static class ColdStart
{
    /// <summary>The indexes rebuilt from the store's change log (embedding every memory again).</summary>
    public static async Task<ColdStartRow> FullRebuildAsync(string dataPath, string query)
    {
        // Snapshots off: this row measures the rebuild even though the ingest server left a snapshot.
        var clock = Stopwatch.StartNew();
        await using var server = await E2eServer.StartAsync(dataPath, snapshots: false);
        var listening = clock.Elapsed;
        await server.SearchHttpAsync(new SearchRequest { Query = query, K = 10 });
        var firstSearch = clock.Elapsed;
        return new ColdStartRow("full rebuild from the change log", listening, firstSearch, server.Engine.Index.Count, MemorySnapshot.Take());
    }

    /// <summary>The indexes loaded from the snapshot the ingest server wrote when it stopped, then caught up.</summary>
    public static async Task<ColdStartRow> SnapshotLoadAsync(string dataPath, string query)
    {
        var clock = Stopwatch.StartNew();
        await using var server = await E2eServer.StartAsync(dataPath, snapshots: true);
        var listening = clock.Elapsed;
        await server.SearchHttpAsync(new SearchRequest { Query = query, K = 10 });
        var firstSearch = clock.Elapsed;
        var report = await server.Engine.EnsureIndexedAsync();
        var snapshotBytes = new FileInfo(Path.Combine(dataPath, IndexSnapshot.FileName)).Length;
        return new ColdStartRow("snapshot load", listening, firstSearch, server.Engine.Index.Count, MemorySnapshot.Take(),
            report.Source == "snapshot" ? $"{snapshotBytes / 1048576.0:0.0} MB snapshot" : $"not loaded: {report.Reason}");
    }
}
