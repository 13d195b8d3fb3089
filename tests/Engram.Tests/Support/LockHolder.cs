namespace Engram.Tests.Support;

/// <summary>
/// Holds <paramref name="target"/> on a thread of its own from construction until disposed: the code under test cannot take
/// it meanwhile (and the test's own thread is not the holder, so it cannot re-enter it either).
/// </summary>
internal sealed class LockHolder : IDisposable
{
    private readonly ManualResetEventSlim _held = new();
    private readonly ManualResetEventSlim _release = new();
    private readonly Thread _holder;

    public LockHolder(Lock target)
    {
        _holder = new Thread(() =>
        {
            lock (target)
            {
                _held.Set();
                _release.Wait();
            }
        });
        _holder.Start();
        _held.Wait();
    }

    public void Dispose()
    {
        _release.Set();
        _holder.Join();
        _held.Dispose();
        _release.Dispose();
    }
}
