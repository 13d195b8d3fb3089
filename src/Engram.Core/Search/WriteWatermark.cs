namespace Engram.Core.Search;

/// <summary>
/// The highest sequence number this process has acknowledged. A search first brings the index up to
/// it, which is what makes every write a client saw acknowledged visible to its next search here.
/// </summary>
public sealed class WriteWatermark
{
    private long _last;

    public long Last => Interlocked.Read(ref _last);

    public void Advance(long seq)
    {
        Common.InterlockedMax.Raise(ref _last, seq);
    }
}
