using System.Globalization;

namespace Engram.Benchmarks.Store;

/// <summary>The insert results as a fixed-width text table.</summary>
public sealed class ThroughputTable
{
    private readonly List<(string Scenario, int Writers, Throughput Result)> _rows = [];

    public void Add(string scenario, int writers, Throughput result)
    {
        _rows.Add((scenario, writers, result));
        // Progress on stderr: the table on stdout stays clean for copying into the README.
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  done: {scenario} x{writers}: {result.PerSecond:N0}/s"));
    }

    public void Print(TextWriter output)
    {
        var width = Math.Max(8, _rows.Max(r => r.Scenario.Length));
        output.WriteLine(Row("insert scenario".PadRight(width), "writers", "memories", "seconds", "memories/s"));
        output.WriteLine(new string('-', width + 45));
        foreach (var (scenario, writers, result) in _rows)
        {
            output.WriteLine(Row(scenario.PadRight(width), writers.ToString(CultureInfo.InvariantCulture), Format(result.Items, "N0"),
                Format(result.Elapsed.TotalSeconds, "0.00"), Format(result.PerSecond, "N0")));
        }
    }

    private static string Row(string scenario, string writers, string items, string seconds, string rate) =>
        $"{scenario}  {writers,7}  {items,10}  {seconds,8}  {rate,11}";

    private static string Format(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
