namespace Engram.Server.Http;

/// <summary>
/// Gives the memory of big refused bodies back to the operating system. Their arrays are garbage once
/// the 4xx is sent, but an idle server runs no collection, so the heap would stay at its peak (the
/// probe saw 1.9 GB held 20 s later). After a refused body of 1 MB or more, one aggressive collection
/// runs a second later (so a burst is reclaimed at once), at most one every 10 seconds (so refusals
/// cannot be used to keep the server collecting).
/// </summary>
internal static class RefusedBodyMemory
{
    public const long ThresholdBytes = 1024 * 1024;

    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(10);

    private static int _scheduled;
    private static long _lastCollection;

    public static void Refused(long bytesHeld)
    {
        if (bytesHeld < ThresholdBytes || Interlocked.Exchange(ref _scheduled, 1) == 1)
        {
            return;
        }
        var sinceLast = TimeSpan.FromTicks(Environment.TickCount64 * TimeSpan.TicksPerMillisecond - Volatile.Read(ref _lastCollection));
        var wait = sinceLast < MinInterval ? MinInterval - sinceLast + Delay : Delay;
        _ = Task.Delay(wait).ContinueWith(static _ =>
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            Volatile.Write(ref _lastCollection, Environment.TickCount64 * TimeSpan.TicksPerMillisecond);
            Volatile.Write(ref _scheduled, 0);
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }
}
