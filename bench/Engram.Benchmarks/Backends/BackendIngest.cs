using Engram.Benchmarks.Store;

namespace Engram.Benchmarks.Backends;

/// <summary>
/// Ingest over real HTTP against an in-process server on a fresh store of one backend, as the <c>store</c>
/// benchmark's (c) rows: <c>POST /v1/memories</c> by one or several clients, <c>POST /v1/memories/batch</c>
/// by one. Time-boxed after a warm-up on the same store; acknowledged means durable on both backends.
/// </summary>
public static class BackendIngest
{
    public static Task<Throughput> SingleAsync(BenchBackend backend, int clients, BackendsSettings settings) =>
        RunAsync(backend, clients, settings, async (server, generator) =>
        {
            await server.CreateAsync(generator.Next());
            return 1;
        });

    public static Task<Throughput> BatchAsync(BenchBackend backend, int batchSize, BackendsSettings settings) =>
        RunAsync(backend, 1, settings, async (server, generator) => (await server.CreateBatchAsync(generator.NextBatch(batchSize))).Count);

    private static async Task<Throughput> RunAsync(BenchBackend backend, int clients, BackendsSettings settings, Func<InProcessServer, ContentGenerator, Task<int>> write)
    {
        await using var store = await backend.FreshAsync();
        await using var server = await InProcessServer.StartAsync(settings.DataRoot, o => store.Configure(o));
        var generators = Enumerable.Range(0, clients).Select(c => new ContentGenerator(settings.Seed + c, $"b{c}")).ToArray();
        await TimedLoop.RunAsync(clients, settings.WarmUp, c => write(server, generators[c]));
        return await TimedLoop.RunAsync(clients, settings.Duration, c => write(server, generators[c]));
    }
}
