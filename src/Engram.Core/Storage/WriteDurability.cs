namespace Engram.Core.Storage;

/// <summary>When a write is acknowledged.</summary>
public enum WriteDurability
{
    /// <summary>After its commit is fsync'd: survives a crash of the process and of the machine.</summary>
    Full,

    /// <summary>
    /// After its commit reaches the operating system: survives a crash of the process, but a power
    /// loss or kernel crash may take the last writes (the database itself stays consistent).
    /// </summary>
    Relaxed,
}
