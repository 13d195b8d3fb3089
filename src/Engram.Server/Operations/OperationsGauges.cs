using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Engram.Core.Telemetry;

namespace Engram.Server.Operations;

/// <summary>
/// The guard's gauges on <see cref="EngramMeter.Meter"/>: working set, budget and its use, write shedding,
/// read-only mode, readiness and free disk. Created once per process; they read the running servers' monitors
/// (one in production; with several in one process, as in tests: read-only and shedding when any server is,
/// the smallest budget and the highest use).
/// </summary>
internal static class OperationsGauges
{
    private static readonly ConcurrentDictionary<MemoryMonitor, byte> Monitors = new();
    private static int _ready = 1;
    private static long _diskFree = -1;

    static OperationsGauges()
    {
        var meter = EngramMeter.Meter;
        meter.CreateObservableGauge("engram_process_working_set_bytes", () => MemoryMonitor.WorkingSet(),
            description: "The process's working set (resident memory).");
        meter.CreateObservableGauge("engram_memory_budget_bytes", () => Monitors.Keys.Select(m => m.Budget.Bytes).DefaultIfEmpty(0).Min(),
            description: "The memory budget (ENGRAM_MEMORY_BUDGET_MB, else the cgroup limit or half the RAM).");
        meter.CreateObservableGauge("engram_memory_budget_used_ratio", () => Monitors.Keys.Select(m => m.Last?.Ratio ?? 0).DefaultIfEmpty(0).Max(),
            description: "Working set over the budget at the last sample; writes are shed from 0.95 until back under 0.85.");
        meter.CreateObservableGauge("engram_write_shedding", () => Monitors.Keys.Any(m => m.Gate.Shedding) ? 1 : 0,
            description: "1 while writes are refused because the process is over its memory budget.");
        meter.CreateObservableGauge("engram_readonly", () => Monitors.Keys.Any(m => m.Gate.ReadOnly) ? 1 : 0,
            description: "1 while the server is in read-only mode.");
        meter.CreateObservableGauge("engram_health_ready", () => Volatile.Read(ref _ready),
            description: "1 when the last readiness check passed.");
        meter.CreateObservableGauge("engram_disk_free_bytes", () => Volatile.Read(ref _diskFree),
            description: "Free space on the data folder's disk at the last check (-1 before the first).");
    }

    public static void Register(MemoryMonitor monitor) => Monitors[monitor] = 0;

    public static void Unregister(MemoryMonitor monitor) => Monitors.TryRemove(monitor, out _);

    public static void Ready(bool ready) => Volatile.Write(ref _ready, ready ? 1 : 0);

    public static void DiskFree(long bytes) => Volatile.Write(ref _diskFree, bytes);
}
