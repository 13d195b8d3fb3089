using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Memories;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Store;

/// <summary>
/// Inserts through <see cref="MemoryService"/> on the shipped SQLite store (WAL, synchronous=FULL):
/// the full write path (validate, normalise, hash, duplicate check, memory + history + change log,
/// group commit) without HTTP.
/// </summary>
public static class ServiceScenarios
{
    private static readonly Caller Bench = Caller.Default("bench");

    public static Task<Throughput> SingleInsertsAsync(int writers, StoreBenchmarkSettings settings) =>
        RunAsync(writers, settings, async (service, generator) =>
        {
            await service.CreateAsync(Bench, generator.Next());
            return 1;
        });

    public static Task<Throughput> BatchInsertsAsync(int batchSize, int writers, StoreBenchmarkSettings settings) =>
        RunAsync(writers, settings, async (service, generator) =>
        {
            var results = await service.CreateBatchAsync(Bench, generator.NextBatch(batchSize));
            return results.Count(r => r.Status == BatchItemResult.Created);
        });

    private static async Task<Throughput> RunAsync(int writers, StoreBenchmarkSettings settings, Func<MemoryService, ContentGenerator, Task<int>> write)
    {
        using var folder = new BenchDataFolder(settings.DataRoot);
        await using var store = SqliteMemoryStore.Open(folder.Path);
        var service = new MemoryService(store, new MemoryLimits(), TimeProvider.System);
        var generators = Enumerable.Range(0, writers).Select(w => new ContentGenerator(settings.Seed + w, $"s{w}")).ToArray();
        await TimedLoop.RunAsync(writers, settings.WarmUp, w => write(service, generators[w]));
        return await TimedLoop.RunAsync(writers, settings.Duration, w => write(service, generators[w]));
    }
}
