namespace Engram.Core.Common;

/// <summary>A semaphore of at most one count used as a wake-up flag: loops that sleep on it until there is work.</summary>
public static class SemaphoreWake
{
    /// <summary>Wakes the one waiter, or the next wait; a wake already pending absorbs this one (idempotent, never throws).</summary>
    public static void WakeOnce(this SemaphoreSlim signal)
    {
        if (signal.CurrentCount == 0)
        {
            try
            {
                signal.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another caller woke it first: one wake-up covers both.
            }
        }
    }
}
