using System.Diagnostics;

namespace Engram.Benchmarks.Store;

/// <summary>
/// Runs <c>workers</c> concurrent loops of an operation until a deadline. Time-boxed rather than
/// a fixed count, because one fsync per commit makes the speed of a run depend on the disk far more
/// than on the code, and a fixed count would take seconds on one machine and minutes on another.
/// </summary>
public static class TimedLoop
{
    /// <param name="operation">Called with the worker's index; returns how many memories it wrote.</param>
    public static async Task<Throughput> RunAsync(int workers, TimeSpan duration, Func<int, Task<int>> operation)
    {
        long items = 0;
        var stopwatch = Stopwatch.StartNew();
        var loops = Enumerable.Range(0, workers).Select(worker => Task.Run(async () =>
        {
            while (stopwatch.Elapsed < duration)
            {
                var done = await operation(worker);
                Interlocked.Add(ref items, done);
            }
        }));
        await Task.WhenAll(loops);
        // The clock stops when the last operation has been acknowledged, not at the deadline.
        stopwatch.Stop();
        return new Throughput(items, stopwatch.Elapsed);
    }
}
