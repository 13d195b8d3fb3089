namespace Engram.Core.Embeddings;

/// <summary>Which embedder to use (configuration section <c>Engram:Embeddings</c>).</summary>
public sealed class EmbeddingSettings
{
    public const string Builtin = "builtin";
    public const string OpenAiProvider = "openai";
    public const string Hash = "hash";
    public const string TransformerProvider = "transformer";

    /// <summary>
    /// <c>transformer</c> (default: an offline sentence-embedding model run by ONNX Runtime, <see cref="Transformer"/>;
    /// R@10 0.700 vs 0.662 on LoCoMo dev and 0.888 vs 0.833 on LongMemEval dev over GloVe, bench/README.md), <c>builtin</c> (offline
    /// GloVe word vectors: microseconds a text, the fast option), <c>openai</c> (any OpenAI-compatible endpoint)
    /// or <c>hash</c> (tests).
    /// </summary>
    public string Provider { get; set; } = TransformerProvider;

    public OpenAiEmbeddingOptions OpenAi { get; set; } = new();

    public Transformer.TransformerOptions Transformer { get; set; } = new();

    public int HashDimensions { get; set; } = 256;

    public IEnumerable<string> Validate()
    {
        switch (Provider)
        {
            case Builtin:
                break;
            case Hash:
                if (HashDimensions is < 8 or > 4096)
                {
                    yield return "Engram:Embeddings:HashDimensions must be between 8 and 4096";
                }
                break;
            case TransformerProvider:
                foreach (var error in Transformer.Validate())
                {
                    yield return error;
                }
                break;
            case OpenAiProvider:
                foreach (var error in OpenAi.Validate())
                {
                    yield return error;
                }
                break;
            default:
                yield return $"Engram:Embeddings:Provider must be builtin, transformer, openai or hash (got '{Provider}')";
                break;
        }
    }

    /// <summary>
    /// Creates the configured provider (call <see cref="Validate"/> first). A remote one calls only its endpoint's
    /// host and <paramref name="outbound"/>'s allowed hosts (<see cref="Net.OutboundHttp"/>).
    /// </summary>
    public IEmbeddingProvider CreateProvider(Net.OutboundOptions? outbound = null) => Provider switch
    {
        OpenAiProvider => new OpenAiCompatibleEmbeddingProvider(OpenAi, outbound: outbound),
        Hash => new HashEmbeddingProvider(HashDimensions),
        TransformerProvider => new Transformer.TransformerEmbeddingProvider(Embeddings.Transformer.TransformerModels.Find(Transformer.Model)!, Transformer),
        _ => BuiltinEmbeddingProvider.Default,
    };
}
