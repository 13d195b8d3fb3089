namespace Engram.Core.Embeddings.Transformer;

/// <summary>The in-process transformer embedder (configuration section <c>Engram:Embeddings:Transformer</c>).</summary>
public sealed class TransformerOptions
{
    /// <summary><c>arctic-embed-xs</c> (default) or <c>all-minilm-l6-v2</c>.</summary>
    public string Model { get; set; } = TransformerModels.ArcticXs.Name;

    /// <summary>ONNX Runtime intra-op threads; 0 = one per core.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// The most tokens (texts × padded length) one model run takes. Caps memory: 32 texts of 512 tokens
    /// in one run took a process to 2.6 GB, while throughput is flat well below that.
    /// </summary>
    public int MaxBatchTokens { get; set; } = 8_192;

    /// <summary>Where the model dlls are; null = the <c>models</c> folder next to Engram's own assemblies.</summary>
    public string? ModelDirectory { get; set; }

    public IEnumerable<string> Validate()
    {
        if (TransformerModels.Find(Model) is null)
        {
            yield return $"Engram:Embeddings:Transformer:Model must be one of {string.Join(", ", TransformerModels.All.Select(m => m.Name))} (got '{Model}')";
        }
        if (Threads is < 0 or > 256)
        {
            yield return "Engram:Embeddings:Transformer:Threads must be between 0 (one per core) and 256";
        }
        if (MaxBatchTokens is < 512 or > 1_048_576)
        {
            yield return "Engram:Embeddings:Transformer:MaxBatchTokens must be between 512 and 1048576";
        }
    }
}
