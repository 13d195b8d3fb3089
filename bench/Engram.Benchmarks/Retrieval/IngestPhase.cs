using System.Diagnostics;
using System.Globalization;
using Engram.Core.Memories;

namespace Engram.Benchmarks.Retrieval;

/// <summary>What one ingest did: memories sent and created, their text, and when the last was acknowledged and indexed.</summary>
public sealed record IngestResult(long Sent, long Created, long TextUtf16Bytes, TimeSpan Acknowledged, TimeSpan Indexed, TimeSpan LastStatsCall, TimeSpan GraphBuilt)
{
    /// <summary>Until every staged vector is in the HNSW graph (searchable before that through the staged buffer).</summary>
    public double GraphBuiltPerSecond => Created / GraphBuilt.TotalSeconds;

    public double AcknowledgedPerSecond => Created / Acknowledged.TotalSeconds;

    public double IndexedPerSecond => Created / Indexed.TotalSeconds;
}

/// <summary>
/// Loads <c>count</c> memories of the corpus through <c>POST /v1/memories/batch</c> with a few concurrent
/// senders, then polls <c>GET /v1/stats</c> until the index has applied the whole change log and has no
/// embedding pending. The clock starts with the first batch; "acknowledged" stops when the last batch is
/// answered, "indexed" when the index has caught up.
/// </summary>
public static class IngestPhase
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(10);

    public static async Task<IngestResult> RunAsync(E2eServer server, CorpusGenerator corpus, long count, int batchSize, int senders)
    {
        var batches = (count + batchSize - 1) / batchSize;
        long next = -1, sent = 0, created = 0, textChars = 0;
        var clock = Stopwatch.StartNew();
        using var done = new CancellationTokenSource();
        var progress = ReportProgressAsync(server, count, clock, () => Interlocked.Read(ref created), done.Token);

        var workers = Enumerable.Range(0, senders).Select(_ => Task.Run(async () =>
        {
            long batch;
            while ((batch = Interlocked.Increment(ref next)) < batches)
            {
                var first = batch * batchSize;
                var last = Math.Min(count, first + batchSize);
                var items = new List<NewMemory?>((int)(last - first));
                long chars = 0;
                for (var i = first; i < last; i++)
                {
                    var memory = corpus.Memory(i);
                    chars += memory.Content!.Length;
                    items.Add(memory);
                }
                Interlocked.Add(ref created, await server.CreateBatchAsync(items));
                Interlocked.Add(ref sent, items.Count);
                Interlocked.Add(ref textChars, chars);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var acknowledged = clock.Elapsed;

        // The last poll's own duration is part of "indexed": GET /v1/stats counts the memories, which
        // costs more as the store grows, so it is reported alongside.
        TimeSpan statsCall;
        while (true)
        {
            var polled = Stopwatch.GetTimestamp();
            var progressNow = await server.StatsAsync();
            statsCall = Stopwatch.GetElapsedTime(polled);
            if (progressNow.CaughtUp)
            {
                break;
            }
            await Task.Delay(100);
        }
        var indexed = clock.Elapsed;
        // Searchable now; the latency phase should measure the steady state, so wait for the graph too.
        while (server.Engine.Index.StagedVectors > 0)
        {
            await Task.Delay(100);
        }
        var graphBuilt = clock.Elapsed;
        await done.CancelAsync();
        await progress;
        return new IngestResult(sent, created, textChars * sizeof(char), acknowledged, indexed, statsCall, graphBuilt);
    }

    private static async Task ReportProgressAsync(E2eServer server, long count, Stopwatch clock, Func<long> created, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(ProgressInterval, ct);
                var acked = created();
                var applied = server.Engine.Index.AppliedSeq;
                var seconds = clock.Elapsed.TotalSeconds;
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"  ingest {seconds,5:0} s: acknowledged {acked:N0}/{count:N0} ({acked / seconds:N0}/s), index at seq {applied:N0} ({applied / seconds:N0}/s), staged vectors {server.Engine.Index.StagedVectors:N0}, {MemorySnapshot.Brief()}"));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
