using BenchmarkDotNet.Attributes;
using Engram.Core.Memories;

namespace Engram.Benchmarks.Micro;

/// <summary>
/// Normalise + hash runs on every create and on every content update, before the writer queue:
/// it is per-request CPU on the hot path. Clean text should take the no-copy fast path; messy
/// white space pays for the collapse.
/// </summary>
[MemoryDiagnoser]
public class ContentNormalizerBenchmarks
{
    private string _clean = "";
    private string _messy = "";
    private string _long = "";

    [GlobalSetup]
    public void Setup()
    {
        _clean = "The user prefers dark mode in every editor and wants short answers with code samples.";
        _messy = "  The user prefers\tdark mode   in every editor\n\nand wants short answers  with code samples.  ";
        _long = string.Join(' ', Enumerable.Repeat(_clean, 100)); // ~8.5k characters, a pasted document
    }

    [Benchmark(Baseline = true)]
    public string Clean() => ContentNormalizer.Hash(ContentNormalizer.Normalize(_clean));

    [Benchmark]
    public string Messy() => ContentNormalizer.Hash(ContentNormalizer.Normalize(_messy));

    [Benchmark]
    public string Long() => ContentNormalizer.Hash(ContentNormalizer.Normalize(_long));
}
