using Engram.Benchmarks.Mcp;
using Engram.Benchmarks.Retrieval;

namespace Engram.Benchmarks.Backends;

/// <summary>The embedded default: a data folder; the loaded store is the one the <c>mcp</c> benchmark caches (same corpus), copied.</summary>
public sealed class SqliteBenchBackend(string dataRoot) : BenchBackend
{
    public override string Name => "SQLite";

    public override Task<BenchStore> FreshAsync()
    {
        var path = Path.Combine(dataRoot, "backends-sqlite-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return Task.FromResult(new BenchStore(null, path, () => RemoveFolderAsync(path)));
    }

    public override async Task<BenchStore> LoadedAsync(CorpusGenerator corpus, int count, int seed)
    {
        var cached = await McpBenchFolder.EnsureAsync(dataRoot, corpus, count, seed);
        var scratch = McpBenchFolder.CopyToScratch(cached, dataRoot);
        return new BenchStore(null, scratch, () => RemoveFolderAsync(scratch));
    }
}
