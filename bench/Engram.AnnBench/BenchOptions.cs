using System.Globalization;

namespace Engram.AnnBench;

/// <summary>Command line: --n, --queries, --model, --ef, --m, --ef-construction, --skip-hnswlib, --skip-int8, --kernels.</summary>
internal sealed record BenchOptions
{
    public int N { get; init; } = 200_000;
    public int Queries { get; init; } = 2_000;
    public int K { get; init; } = 10;
    public int M { get; init; } = 16;
    public int EfConstruction { get; init; } = 200;
    public int[] Ef { get; init; } = [16, 32, 64, 128, 256];
    public string? Model { get; init; }
    public bool SkipHnswlib { get; init; }
    public bool SkipInt8 { get; init; }
    public bool KernelsOnly { get; init; }
    public string Python { get; init; } = "/usr/bin/python3";

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--n" => options with { N = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--queries" => options with { Queries = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--k" => options with { K = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--m" => options with { M = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--ef-construction" => options with { EfConstruction = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--ef" => options with { Ef = [.. Next().Split(',').Select(e => int.Parse(e, CultureInfo.InvariantCulture))] },
                "--model" => options with { Model = Next() },
                "--python" => options with { Python = Next() },
                "--skip-hnswlib" => options with { SkipHnswlib = true },
                "--skip-int8" => options with { SkipInt8 = true },
                "--kernels" => options with { KernelsOnly = true },
                _ => throw new ArgumentException($"unknown argument {args[i]}"),
            };
        }
        return options;
    }
}
