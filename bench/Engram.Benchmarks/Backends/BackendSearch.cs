using System.Diagnostics;
using Engram.Benchmarks.Retrieval;
using Engram.Core.Search;

namespace Engram.Benchmarks.Backends;

/// <summary>What the loaded store's server did: how soon it answered, its search latency, and its memory beside an empty store's server.</summary>
public sealed record BackendSearchResult(TimeSpan FirstSearch, IReadOnlyList<SearchRow> Rows, MemorySnapshot Empty, MemorySnapshot Loaded, int Documents)
{
    /// <summary>
    /// The managed heap only: the working set of this process also holds what earlier servers in it committed, so the
    /// resident size per memory is taken from <c>engram serve</c> processes instead (<see cref="VisibilityResult"/>).
    /// </summary>
    public double ManagedBytesPerMemory => (double)(Loaded.ManagedBytes - Empty.ManagedBytes) / Documents;
}

/// <summary>
/// Search latency over HTTP (<c>POST /v1/search</c>, k=10, GloVe builtin embedder) against an in-process server
/// on the loaded store, after warm-up queries and once the index has caught up, with 1 and 8 clients; and the
/// process's memory with that server up, against the same with a server on an empty store of the same backend
/// (both after the same warm-up, so the embedding model and the compiled code cancel out).
/// </summary>
public static class BackendSearch
{
    public static async Task<BackendSearchResult> RunAsync(BenchBackend backend, BenchStore loaded, IReadOnlyList<string> queries, IReadOnlyList<string> warmUp)
    {
        MemorySnapshot empty;
        await using (var fresh = await backend.FreshAsync())
        {
            await using var server = await E2eServer.StartAsync(fresh.InstanceFolder(0), configure: o => fresh.Configure(o));
            foreach (var query in warmUp)
            {
                await server.SearchHttpAsync(new SearchRequest { Query = query, K = 10 });
            }
            empty = MemorySnapshot.Take();
        }

        var clock = Stopwatch.StartNew();
        await using (var server = await E2eServer.StartAsync(loaded.InstanceFolder(0), configure: o => loaded.Configure(o)))
        {
            // Answered once the index is loaded (SQLite: from the snapshot; PostgreSQL keeps none, so rebuilt from the database).
            await server.SearchHttpAsync(new SearchRequest { Query = queries[0], K = 10 });
            var firstSearch = clock.Elapsed;
            IndexProgress progress;
            while (!(progress = await server.StatsAsync()).CaughtUp || server.Engine.Index.StagedVectors > 0)
            {
                await Task.Delay(100);
            }
            await Console.Error.WriteLineAsync($"  {backend.Name}: first search after {firstSearch.TotalSeconds:0.0} s, {progress.Documents:N0} documents indexed");
            Task OverHttp(string q) => server.SearchHttpAsync(new SearchRequest { Query = q, K = 10 });
            var rows = new List<SearchRow>();
            foreach (var clients in (int[])[1, 8])
            {
                rows.Add(await SearchLatency.RunAsync($"{backend.Name} HTTP POST /v1/search", clients, queries, warmUp, OverHttp));
            }
            return new BackendSearchResult(firstSearch, rows, empty, MemorySnapshot.Take(), progress.Documents);
        }
    }
}
