using System.Diagnostics.Metrics;
using Engram.Core.Telemetry;

namespace Engram.Core.Operations;

/// <summary>
/// The backup instruments on <see cref="EngramMeter.Meter"/>: the time of the last good backup and the last result
/// (reported once a backup was made or found in the backup folder), each backup's duration, and a count by result.
/// </summary>
public static class BackupMetrics
{
    private static readonly Histogram<double> Duration = EngramMeter.Meter.CreateHistogram<double>("engram_backup_duration_seconds",
        description: "Time to make one backup (copy, compress, write).");

    private static readonly Counter<long> Backups = EngramMeter.Meter.CreateCounter<long>("engram_backups_total",
        description: "Backups made, by result (ok, failed).");

    private static long _lastSuccessMs = -1;
    private static int _lastResult = -1;

    static BackupMetrics()
    {
        EngramMeter.Meter.CreateObservableGauge("engram_backup_last_success_timestamp_seconds",
            () => Volatile.Read(ref _lastSuccessMs) is var ms and >= 0 ? [new Measurement<double>(ms / 1000.0)] : Array.Empty<Measurement<double>>(),
            description: "Unix time of the last successful backup.");
        EngramMeter.Meter.CreateObservableGauge("engram_backup_last_result",
            () => Volatile.Read(ref _lastResult) is var r and >= 0 ? [new Measurement<int>(r)] : Array.Empty<Measurement<int>>(),
            description: "Result of the last backup: 1 ok, 0 failed.");
    }

    /// <summary>When the last good backup was made (or found at start); null before any.</summary>
    public static DateTimeOffset? LastSuccessAt => Volatile.Read(ref _lastSuccessMs) is var ms and >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>Whether the last backup failed (false before any).</summary>
    public static bool LastFailed => Volatile.Read(ref _lastResult) == 0;

    /// <summary>Creates the instruments (the first use of this class does); the server calls it at start.</summary>
    public static void Register()
    {
    }

    public static void Succeeded(DateTimeOffset at, double seconds)
    {
        Duration.Record(seconds);
        Backups.Add(1, new KeyValuePair<string, object?>("result", "ok"));
        Interlocked.Exchange(ref _lastSuccessMs, Math.Max(Volatile.Read(ref _lastSuccessMs), at.ToUnixTimeMilliseconds()));
        Volatile.Write(ref _lastResult, 1);
    }

    public static void Failed(double seconds)
    {
        Duration.Record(seconds);
        Backups.Add(1, new KeyValuePair<string, object?>("result", "failed"));
        Volatile.Write(ref _lastResult, 0);
    }

    /// <summary>Seeds the gauges from a backup found on disk at start (a restart does not make the last backup look missing).</summary>
    public static void Found(DateTimeOffset newest)
    {
        if (Volatile.Read(ref _lastSuccessMs) < newest.ToUnixTimeMilliseconds())
        {
            Interlocked.Exchange(ref _lastSuccessMs, newest.ToUnixTimeMilliseconds());
        }
        if (Volatile.Read(ref _lastResult) < 0)
        {
            Volatile.Write(ref _lastResult, 1);
        }
    }
}
