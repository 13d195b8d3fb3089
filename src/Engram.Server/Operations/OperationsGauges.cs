using System.Diagnostics.Metrics;
using Engram.Core.Telemetry;

namespace Engram.Server.Operations;

/// <summary>
/// The guard's gauges on <see cref="EngramMeter.Meter"/>: working set, budget and its use, write shedding,
/// read-only mode, readiness and free disk. Created once per process; they report the last values the server's
/// monitor and health checks recorded (with several servers in one process, as in tests: the latest writer's).
/// </summary>
internal static class OperationsGauges
{
    private static long s_workingSet;
    private static long s_budget;
    private static double s_ratio;
    private static int s_shedding;
    private static int s_readOnly;
    private static int s_ready = 1;
    private static long s_diskFree = -1;

    static OperationsGauges()
    {
        var meter = EngramMeter.Meter;
        meter.CreateObservableGauge("engram_process_working_set_bytes", () => Volatile.Read(ref s_workingSet),
            description: "The process's working set (resident memory), sampled by the memory monitor.");
        meter.CreateObservableGauge("engram_memory_budget_bytes", () => Volatile.Read(ref s_budget),
            description: "The memory budget (ENGRAM_MEMORY_BUDGET_MB, else the cgroup limit or half the RAM).");
        meter.CreateObservableGauge("engram_memory_budget_used_ratio", () => Volatile.Read(ref s_ratio),
            description: "Working set over the budget; writes are shed from 0.95 until back under 0.85.");
        meter.CreateObservableGauge("engram_write_shedding", () => Volatile.Read(ref s_shedding),
            description: "1 while writes are refused because the process is over its memory budget.");
        meter.CreateObservableGauge("engram_readonly", () => Volatile.Read(ref s_readOnly),
            description: "1 while the server is in read-only mode.");
        meter.CreateObservableGauge("engram_health_ready", () => Volatile.Read(ref s_ready),
            description: "1 when the last readiness check passed.");
        meter.CreateObservableGauge("engram_disk_free_bytes", () => Volatile.Read(ref s_diskFree),
            description: "Free space on the data folder's disk (-1 before the first check).");
    }

    public static void Memory(long workingSet, long budget, double ratio, bool shedding)
    {
        Volatile.Write(ref s_workingSet, workingSet);
        Volatile.Write(ref s_budget, budget);
        Volatile.Write(ref s_ratio, ratio);
        Volatile.Write(ref s_shedding, shedding ? 1 : 0);
    }

    public static void ReadOnly(bool readOnly) => Volatile.Write(ref s_readOnly, readOnly ? 1 : 0);

    public static void Ready(bool ready) => Volatile.Write(ref s_ready, ready ? 1 : 0);

    public static void DiskFree(long bytes) => Volatile.Write(ref s_diskFree, bytes);
}
