namespace Engram.Core.Embeddings;

/// <summary>
/// An embedder that runs in process, CPU-only and in microseconds (builtin, hash): the async contract
/// is answered synchronously, and remote-model precautions (deferring embeddings at start) do not apply.
/// </summary>
public abstract class LocalEmbeddingProvider : IEmbeddingProvider
{
    public abstract string ModelId { get; }

    public abstract int Dimensions { get; }

    /// <summary>Embeds synchronously.</summary>
    public abstract float[] Embed(ReadOnlySpan<char> text);

    public ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Embed(text));
    }

    public ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var result = new float[texts.Count][];
        for (var i = 0; i < result.Length; i++)
        {
            ct.ThrowIfCancellationRequested();
            result[i] = Embed(texts[i]);
        }
        return ValueTask.FromResult(result);
    }
}
