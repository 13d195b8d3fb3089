using System.Globalization;

namespace Engram.Benchmarks;

/// <summary>The command-line reading and percentiles the benchmark commands share.</summary>
internal static class BenchArgs
{
    /// <summary>The value after <paramref name="name"/>, or null.</summary>
    public static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    /// <summary>The integer after <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public static int Flag(string[] args, string name, int fallback) =>
        Option(args, name) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

    /// <summary>The nearest-rank percentile <paramref name="p"/> (0..1) of already sorted values.</summary>
    public static double P(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
