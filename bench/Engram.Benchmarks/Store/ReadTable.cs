using System.Globalization;

namespace Engram.Benchmarks.Store;

/// <summary>The read-burst results as a fixed-width text table.</summary>
public static class ReadTable
{
    public static void Print(TextWriter output, params ReadOnlySpan<ReadBurstResult> results)
    {
        output.WriteLine($"{"reads",-26}  {"wall s",7}  {"reads/s",8}  {"p50 ms",7}  {"p95 ms",7}  {"p99 ms",7}  {"writes/s meanwhile",18}");
        output.WriteLine(new string('-', 93));
        foreach (var r in results)
        {
            var label = r.Writers == 0 ? "alone" : $"while {r.Writers} HTTP writers insert";
            var writes = r.Writers == 0 ? "-" : F(r.WritesPerSecond, "N0");
            output.WriteLine($"{label,-26}  {F(r.Elapsed.TotalSeconds, "0.00"),7}  {F(r.ReadsPerSecond, "N0"),8}  {F(r.Latency.Percentile(50), "0.00"),7}  " +
                $"{F(r.Latency.Percentile(95), "0.00"),7}  {F(r.Latency.Percentile(99), "0.00"),7}  {writes,18}");
        }
    }

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
