using System.Diagnostics;

namespace Engram.Benchmarks.Embeddings;

/// <summary>Samples the process's resident set every few milliseconds and keeps the peak (while disposed-of work runs).</summary>
internal sealed class RssSampler : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _peak;

    public RssSampler()
    {
        _peak = Current();
        _thread = new Thread(() =>
        {
            while (!_stop.IsCancellationRequested)
            {
                var now = Current();
                if (now > Interlocked.Read(ref _peak))
                {
                    Interlocked.Exchange(ref _peak, now);
                }
                Thread.Sleep(5);
            }
        })
        { IsBackground = true, Name = "rss-sampler" };
        _thread.Start();
    }

    public long PeakBytes => Interlocked.Read(ref _peak);

    public static long Current()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    public static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):F0} MB";

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
    }
}
