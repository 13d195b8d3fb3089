using Microsoft.ML.OnnxRuntime;

namespace Engram.Core.Embeddings.Transformer;

/// <summary>The in-process transformer embedder (configuration section <c>Engram:Embeddings:Transformer</c>).</summary>
public sealed class TransformerOptions
{
    /// <summary><c>arctic-embed-xs</c> (default) or <c>all-minilm-l6-v2</c>.</summary>
    public string Model { get; set; } = TransformerModels.ArcticXs.Name;

    /// <summary>ONNX Runtime intra-op threads; 0 = one per core.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// The most tokens (texts × padded length) one model run takes. Caps memory (32 texts of 512 tokens in one
    /// run took a process to 2.6 GB; 2048 peaked at about 400 MB, 4096 at about 520 MB) and how long a run holds
    /// the cores, while throughput was flat from 1024 to 16384 (bench/README.md, 2026-12-02).
    /// </summary>
    public int MaxBatchTokens { get; set; } = 2_048;

    /// <summary>ONNX Runtime's graph optimisation level (all fusions by default; a benchmark knob).</summary>
    public GraphOptimizationLevel GraphOptimization { get; set; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Whether ORT's pool threads busy-wait between parallel sections (off: a server would burn CPU between requests).</summary>
    public bool AllowSpinning { get; set; }

    /// <summary>Where the model dlls are; null = the <c>models</c> folder next to Engram's own assemblies.</summary>
    public string? ModelDirectory { get; set; }

    /// <summary>The intra-op thread count actually used.</summary>
    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;

    public IEnumerable<string> Validate()
    {
        if (TransformerModels.Find(Model) is null)
        {
            yield return $"Engram:Embeddings:Transformer:Model must be one of {string.Join(", ", TransformerModels.All.Select(m => m.Name))} (got '{Model}')";
        }
        if (Threads is < 0 or > 256)
        {
            yield return $"Engram:Embeddings:Transformer:Threads must be between 0 (one per core) and 256 (got {Threads})";
        }
        if (MaxBatchTokens is < 512 or > 1_048_576)
        {
            yield return $"Engram:Embeddings:Transformer:MaxBatchTokens must be between 512 and 1048576 (got {MaxBatchTokens})";
        }
        if (!Enum.IsDefined(GraphOptimization))
        {
            yield return "Engram:Embeddings:Transformer:GraphOptimization must be ORT_DISABLE_ALL, ORT_ENABLE_BASIC, ORT_ENABLE_EXTENDED or ORT_ENABLE_ALL";
        }
    }
}
