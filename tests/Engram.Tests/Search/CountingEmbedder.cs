using Engram.Core.Embeddings;

namespace Engram.Tests.Search;

/// <summary>
/// A model that is not in-process-instant (so vectors persist, as with the transformer or a remote
/// model): deterministic hash vectors, every document and query it embeds counted, and an optional
/// gate that holds document batches until released (a deliberately slow model).
/// </summary>
public sealed class CountingEmbedder(string modelId = "counting-v1", int dimensions = 16) : IEmbeddingProvider
{
    private readonly HashEmbeddingProvider _vectors = new(dimensions);
    private int _documents;
    private int _queries;

    public string ModelId => modelId;

    public int Dimensions => dimensions;

    public int Documents => Volatile.Read(ref _documents);

    public int Queries => Volatile.Read(ref _queries);

    /// <summary>When set, document embedding waits for it (queries never do).</summary>
    public TaskCompletionSource? Gate { get; set; }

    public async ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default) => (await EmbedBatchAsync([text], ct))[0];

    public ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _queries);
        return ValueTask.FromResult(_vectors.Embed(text));
    }

    public async ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default)
    {
        if (Gate is { } gate)
        {
            await gate.Task.WaitAsync(ct);
        }
        Interlocked.Add(ref _documents, texts.Count);
        return [.. texts.Select(t => _vectors.Embed(t))];
    }

    public void Reset()
    {
        Interlocked.Exchange(ref _documents, 0);
        Interlocked.Exchange(ref _queries, 0);
    }
}
