using System.Diagnostics;

namespace Engram.Benchmarks.Store;

/// <summary>What a burst of concurrent reads measured, and the writes that went on meanwhile.</summary>
public sealed record ReadBurstResult(int Reads, int Readers, TimeSpan Elapsed, LatencyStats Latency, int Writers, long Writes)
{
    public double ReadsPerSecond => Reads / Elapsed.TotalSeconds;

    public double WritesPerSecond => Writes / Elapsed.TotalSeconds;
}

/// <summary>
/// GET by id over HTTP, many readers at once, first alone and then while writers keep inserting:
/// WAL readers should not wait for the writer, so the read latency should barely move.
/// </summary>
public static class ReadsUnderWritesScenario
{
    private const int Population = 10_000;
    private const int PopulateBatch = 1_000;

    public static async Task<(ReadBurstResult Alone, ReadBurstResult UnderWrites)> RunAsync(StoreBenchmarkSettings settings)
    {
        await using var server = await InProcessServer.StartAsync(settings.DataRoot);
        var populate = new ContentGenerator(settings.Seed, "p");
        var ids = new List<string>(Population);
        while (ids.Count < Population)
        {
            ids.AddRange(await server.CreateBatchAsync(populate.NextBatch(PopulateBatch)));
        }

        await ReadBurstAsync(server, ids, settings.Reads / 10, settings.Readers, settings.Seed); // warm-up
        var alone = await ReadBurstAsync(server, ids, settings.Reads, settings.Readers, settings.Seed + 1);

        using var stopWriters = new CancellationTokenSource();
        long writes = 0;
        var writers = Enumerable.Range(0, settings.WritersDuringReads).Select(w => Task.Run(async () =>
        {
            var generator = new ContentGenerator(settings.Seed + w, $"m{w}");
            while (!stopWriters.IsCancellationRequested)
            {
                await server.CreateAsync(generator.Next());
                Interlocked.Increment(ref writes);
            }
        })).ToArray();
        // Let the writers reach their stride before the clock starts.
        await Task.Delay(settings.WarmUp);
        var writesBefore = Interlocked.Read(ref writes);
        var underWrites = await ReadBurstAsync(server, ids, settings.Reads, settings.Readers, settings.Seed + 2);
        var writesDuring = Interlocked.Read(ref writes) - writesBefore;
        await stopWriters.CancelAsync();
        await Task.WhenAll(writers);
        return (alone, underWrites with { Writers = settings.WritersDuringReads, Writes = writesDuring });
    }

    private static async Task<ReadBurstResult> ReadBurstAsync(InProcessServer server, List<string> ids, int reads, int readers, int seed)
    {
        var remaining = reads;
        var latencies = new List<long>[readers];
        var stopwatch = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, readers).Select(r => Task.Run(async () =>
        {
            var random = new Random(seed * 31 + r);
            var mine = latencies[r] = new List<long>(reads / readers + 1);
            while (Interlocked.Decrement(ref remaining) >= 0)
            {
                var started = Stopwatch.GetTimestamp();
                await server.GetAsync(ids[random.Next(ids.Count)]);
                mine.Add(Stopwatch.GetTimestamp() - started);
            }
        }));
        await Task.WhenAll(tasks);
        stopwatch.Stop();
        return new ReadBurstResult(reads, readers, stopwatch.Elapsed, new LatencyStats(latencies.SelectMany(l => l)), 0, 0);
    }
}
