using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// Puts memories 0..count-1 of the corpus into an engine's store through <see cref="MemoryService.CreateBatchAsync"/>
/// in batches of 1000 (the fastest path), then waits until the index holds them all, graph built: how the
/// benchmarks that start on a loaded store (mcp, backends) build it once before caching it.
/// </summary>
public static class CorpusLoader
{
    private static readonly Caller Loader = Caller.Default("bench");

    public static async Task LoadAsync(EngramEngine engine, CorpusGenerator corpus, int count)
    {
        for (var start = 0; start < count; start += 1000)
        {
            var batch = Enumerable.Range(start, Math.Min(1000, count - start)).Select(i => (NewMemory?)corpus.Memory(i)).ToList();
            await engine.Memories.CreateBatchAsync(Loader, batch);
        }
        await engine.EnsureIndexedAsync();
        while (engine.Index.DrainStaged(4096) > 0 || engine.Index.StagedVectors > 0)
        {
        }
    }
}
