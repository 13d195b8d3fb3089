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
        // When snapshots exist, delete or bypass them here so this row keeps measuring the rebuild.
        var clock = Stopwatch.StartNew();
        await using var server = await E2eServer.StartAsync(dataPath);
        var listening = clock.Elapsed;
        await server.SearchHttpAsync(new SearchRequest { Query = query, K = 10 });
        var firstSearch = clock.Elapsed;
        return new ColdStartRow("full rebuild from the change log", listening, firstSearch, server.Engine.Index.Count, MemorySnapshot.Take());
    }

    /// <summary>
    /// The indexes loaded from a snapshot. Snapshots are being added in another branch: once they are,
    /// write one (stop the ingest server cleanly), then time a start here as in <see cref="FullRebuildAsync"/>.
    /// </summary>
    public static ColdStartRow SnapshotLoad() => new("snapshot load", null, null, 0, null, "n/a (no snapshot yet)");
}
