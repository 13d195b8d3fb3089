namespace Engram.Core.Embeddings;

/// <summary>
/// Turns text into a vector for semantic retrieval.
/// </summary>
/// <remarks>
/// Contract, for every implementation:
/// <list type="bullet">
/// <item>Every vector has exactly <see cref="Dimensions"/> elements and is L2-normalized (length 1), so cosine
/// similarity is a dot product. The one exception is text with nothing the model knows (empty, whitespace, or only
/// out-of-vocabulary tokens): the vector is then all zeros, whose cosine with anything is 0.</item>
/// <item>Vectors from different <see cref="ModelId"/>s are not comparable; store the model id with every vector and
/// re-embed when it changes.</item>
/// <item>Implementations are thread-safe: any number of calls may run at once on one instance.</item>
/// <item>The same text with the same model id gives the same vector (remote models: as far as the remote is deterministic).</item>
/// </list>
/// </remarks>
public interface IEmbeddingProvider
{
    /// <summary>Identifies the model and every setting that changes its vectors, e.g. "builtin-glove6b-100d-int8-v1".</summary>
    string ModelId { get; }

    /// <summary>The length of every vector this provider returns.</summary>
    int Dimensions { get; }

    /// <summary>Embeds one document (a memory's content).</summary>
    ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default);

    /// <summary>
    /// Embeds a search query. Models trained for asymmetric retrieval want queries marked (arctic-embed's
    /// "Represent this sentence for searching relevant passages: "); the rest embed a query like a document.
    /// </summary>
    ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default) => EmbedAsync(text, ct);

    /// <summary>Embeds several documents; the result has one vector per text, in order.</summary>
    ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default);
}
