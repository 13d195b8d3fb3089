namespace Engram.Core.Storage;

/// <summary>A failure inside the store that is not the caller's fault (I/O, corruption, a schema it cannot use).</summary>
public class StoreException : Exception
{
    public StoreException(string message) : base(message) { }

    public StoreException(string message, Exception inner) : base(message, inner) { }
}
