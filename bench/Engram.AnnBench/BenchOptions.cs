using System.Globalization;

namespace Engram.AnnBench;

/// <summary>Command line: see README.md (--dataset glove|sentences, --n, --queries, --ef, --skip-native, --skip-hnswlib, ...).</summary>
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
    public bool SkipNative { get; init; }

    /// <summary><c>glove</c> (100 dimensions, words) or <c>sentences</c> (384, the transformer's vectors of real turns).</summary>
    public string Dataset { get; init; } = "glove";
    public int Sentences { get; init; } = 100_000;
    public int EmbedSeconds { get; init; } = 900;
    public int Passes { get; init; } = 3;
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
                "--skip-native" => options with { SkipNative = true },
                "--dataset" => options with { Dataset = Next() },
                "--sentences" => options with { Sentences = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--embed-seconds" => options with { EmbedSeconds = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--passes" => options with { Passes = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--skip-int8" => options with { SkipInt8 = true },
                "--kernels" => options with { KernelsOnly = true },
                _ => throw new ArgumentException($"unknown argument {args[i]}"),
            };
        }
        return options;
    }
}
