using System.Diagnostics;
using Engram.Core.Common;

namespace Engram.Core.Search;

/// <summary>
/// Fills in pending vectors behind the writes: wakes when a catch-up leaves vectors pending (or every
/// few seconds), takes them in batches (stored vectors first, the rest embedded and stored), and
/// backs off while the embedder fails. With it running, neither a write nor a search waits on the
/// embedder (<see cref="IndexFollower.BackgroundEmbedding"/>); it also replaces the maintenance
/// loop's retry of failed embeddings.
/// </summary>
public sealed class EmbeddingWorker
{
    private static readonly TimeSpan IdleWake = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromMinutes(5);

    private readonly IndexFollower _follower;
    private readonly int _batchSize;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private double _rate;

    public EmbeddingWorker(IndexFollower follower, int batchSize = 64)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _follower = follower;
        _batchSize = batchSize;
    }

    /// <summary>Vectors per second while working (a moving average over recent batches; 0 before the first).</summary>
    public double EmbeddingRate => Volatile.Read(ref _rate);

    /// <summary>Runs until <paramref name="ct"/> is cancelled; <paramref name="background"/> takes embedding off the catch-ups.</summary>
    public async Task RunAsync(bool background, CancellationToken ct)
    {
        _follower.VectorsPending += Wake;
        _follower.BackgroundEmbedding = background;
        var retry = FirstRetry;
        try
        {
            Wake(); // a snapshot may have brought pending vectors
            while (!ct.IsCancellationRequested)
            {
                if (_follower.Index.PendingVectors == 0)
                {
                    await _wake.WaitAsync(IdleWake, ct).ConfigureAwait(false);
                    continue;
                }
                var started = Stopwatch.GetTimestamp();
                var pass = await _follower.EmbedPendingAsync(_batchSize, ct).ConfigureAwait(false);
                if (pass.Failed)
                {
                    await Task.Delay(retry, ct).ConfigureAwait(false);
                    retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, MaxRetry.Ticks));
                    continue;
                }
                retry = FirstRetry;
                if (pass.Embedded > 0)
                {
                    var seconds = Math.Max(Stopwatch.GetElapsedTime(started).TotalSeconds, 1e-6);
                    var rate = pass.Embedded / seconds;
                    Volatile.Write(ref _rate, _rate == 0 ? rate : (0.8 * _rate) + (0.2 * rate));
                }
                if (pass.Attached == 0 && pass.Embedded == 0)
                {
                    // Only memories changed or deleted since they went pending: the next catch-up settles them.
                    await _wake.WaitAsync(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            _follower.BackgroundEmbedding = false;
            _follower.VectorsPending -= Wake;
        }
    }

    /// <summary>Wakes the loop (idempotent).</summary>
    public void Wake() => _wake.WakeOnce();
}
