using System.Diagnostics;
using System.Runtime;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// The process's memory after a full, compacting, blocking GC: the managed heap's live bytes, the
/// working set (resident pages: managed heap as committed, native SQLite page caches, code) and
/// private bytes (committed, resident or not).
/// </summary>
public readonly record struct MemorySnapshot(long ManagedBytes, long WorkingSetBytes, long PrivateBytes)
{
    public static MemorySnapshot Take()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var process = Process.GetCurrentProcess();
        return new MemorySnapshot(GC.GetTotalMemory(forceFullCollection: false), process.WorkingSet64, process.PrivateMemorySize64);
    }

    /// <summary>Managed heap and working set in MB, for progress lines.</summary>
    public static string Brief()
    {
        using var process = Process.GetCurrentProcess();
        return $"GC heap {GC.GetTotalMemory(false) / 1048576} MB, working set {process.WorkingSet64 / 1048576} MB";
    }
}
