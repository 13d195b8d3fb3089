namespace Engram.Core.Embeddings;

/// <summary>
/// A bounded least-recently-used map from (model id, query text) to the query's vector: agents repeat
/// queries, and with a transformer a query embedding costs milliseconds. Thread-safe (one lock around
/// a dictionary and a linked list; both operations are O(1)). Callers must not modify returned vectors.
/// </summary>
public sealed class QueryVectorCache
{
    private readonly int _capacity;
    private readonly Dictionary<(string Model, string Text), LinkedListNode<Entry>> _map = [];
    private readonly LinkedList<Entry> _order = []; // most recently used first
    private readonly Lock _lock = new();
    private long _hits;
    private long _misses;

    public QueryVectorCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    public int Capacity => _capacity;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _map.Count;
            }
        }
    }

    public long Hits => Interlocked.Read(ref _hits);

    public long Misses => Interlocked.Read(ref _misses);

    public bool TryGet(string model, string text, out float[] vector)
    {
        lock (_lock)
        {
            if (_map.TryGetValue((model, text), out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                vector = node.Value.Vector;
                Interlocked.Increment(ref _hits);
                return true;
            }
        }
        Interlocked.Increment(ref _misses);
        vector = [];
        return false;
    }

    public void Add(string model, string text, float[] vector)
    {
        lock (_lock)
        {
            if (_map.TryGetValue((model, text), out var existing))
            {
                existing.Value = new Entry(model, text, vector);
                _order.Remove(existing);
                _order.AddFirst(existing);
                return;
            }
            if (_map.Count >= _capacity && _order.Last is { } oldest)
            {
                _order.RemoveLast();
                _map.Remove((oldest.Value.Model, oldest.Value.Text));
            }
            _map[(model, text)] = _order.AddFirst(new Entry(model, text, vector));
        }
    }

    /// <summary>Empties the cache (<c>POST /v1/admin/cache/cleanup</c>); returns how many entries went.</summary>
    public int Clear()
    {
        lock (_lock)
        {
            var count = _map.Count;
            _map.Clear();
            _order.Clear();
            return count;
        }
    }

    private sealed record Entry(string Model, string Text, float[] Vector);
}

/// <summary>
/// An embedder whose query embeddings go through a <see cref="QueryVectorCache"/> keyed by the inner
/// model's id; document embeddings pass straight through.
/// </summary>
public sealed class CachedQueryEmbedder(IEmbeddingProvider inner, QueryVectorCache cache) : IEmbeddingProvider
{
    public IEmbeddingProvider Inner => inner;

    public QueryVectorCache Cache => cache;

    public string ModelId => inner.ModelId;

    public int Dimensions => inner.Dimensions;

    public ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default) => inner.EmbedAsync(text, ct);

    public ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default) => inner.EmbedBatchAsync(texts, ct);

    public ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default)
    {
        var model = inner.ModelId;
        return cache.TryGet(model, text, out var cached) ? ValueTask.FromResult(cached) : EmbedAndKeepAsync(model, text, ct);
    }

    private async ValueTask<float[]> EmbedAndKeepAsync(string model, string text, CancellationToken ct)
    {
        var vector = await inner.EmbedQueryAsync(text, ct).ConfigureAwait(false);
        cache.Add(model, text, vector);
        return vector;
    }
}
