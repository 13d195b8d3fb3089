namespace Engram.Benchmarks.Store;

/// <summary>Inserts over real HTTP (JSON, Kestrel, routing, problem handling) against an in-process server.</summary>
public static class HttpScenarios
{
    public static Task<Throughput> SingleInsertsAsync(int writers, StoreBenchmarkSettings settings) =>
        RunAsync(writers, settings, async (server, generator) =>
        {
            await server.CreateAsync(generator.Next());
            return 1;
        });

    public static Task<Throughput> BatchInsertsAsync(int batchSize, int writers, StoreBenchmarkSettings settings) =>
        RunAsync(writers, settings, async (server, generator) => (await server.CreateBatchAsync(generator.NextBatch(batchSize))).Count);

    private static async Task<Throughput> RunAsync(int writers, StoreBenchmarkSettings settings, Func<InProcessServer, ContentGenerator, Task<int>> write)
    {
        await using var server = await InProcessServer.StartAsync(settings.DataRoot);
        var generators = Enumerable.Range(0, writers).Select(w => new ContentGenerator(settings.Seed + w, $"h{w}")).ToArray();
        await TimedLoop.RunAsync(writers, settings.WarmUp, w => write(server, generators[w]));
        return await TimedLoop.RunAsync(writers, settings.Duration, w => write(server, generators[w]));
    }
}
