namespace Engram.Core.Embeddings.Transformer;

/// <summary>
/// A sentence-embedding transformer (BERT-style encoder as ONNX) run in process by ONNX Runtime on the CPU.
/// Texts are tokenized with the model's WordPiece vocabulary (Microsoft.ML.Tokenizers, after NFD with accents
/// stripped, as uncased BERT does), truncated to the model's window keeping [CLS] and [SEP], sorted by length
/// and run in batches capped by tokens (less padding, bounded memory), pooled the model's way and L2-normalised.
/// Queries get the model's query prefix (<see cref="EmbedQueryAsync"/>). Nothing is loaded until the first
/// embed, so a server or an MCP handshake never waits for the seconds it takes to load the model.
/// </summary>
public sealed class TransformerEmbeddingProvider : IEmbeddingProvider, IDisposable
{
    private readonly TransformerOptions _options;
    private readonly Lazy<TransformerRuntime> _runtime;
    private bool _disposed;

    public TransformerEmbeddingProvider(TransformerModel model, TransformerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _options = options ?? new TransformerOptions();
        // A failed load (missing or altered model file) is kept: every embed reports the same clear error
        // cheaply instead of re-reading 90 MB, and the index keeps such memories pending (lexical only).
        _runtime = new Lazy<TransformerRuntime>(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public TransformerModel Model { get; }

    public string ModelId => Model.ModelId;

    public int Dimensions => Model.Dimensions;

    /// <summary>True once the model has been loaded (by the first embed or <see cref="WarmUp"/>).</summary>
    public bool IsLoaded => _runtime.IsValueCreated;

    /// <summary>Why the model could not be loaded (the failure is kept: every embed reports it), or null.</summary>
    public string? LoadError { get; private set; }

    /// <summary>The model package (the DLL holding the ONNX model and its vocabulary) this provider loads.</summary>
    public string PackagePath => Path.Combine(_options.ModelDirectory ?? ModelPackage.DefaultDirectory, Model.AssemblyFile);

    /// <summary>Loads the model now (otherwise the first embed does).</summary>
    public void WarmUp() => _ = _runtime.Value;

    public ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default) =>
        ValueTask.FromResult(Embed([text], query: false, ct)[0]);

    public ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default) =>
        ValueTask.FromResult(Embed([text], query: true, ct)[0]);

    public ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default) =>
        ValueTask.FromResult(Embed(texts, query: false, ct));

    /// <summary>Token ids of <paramref name="text"/> as the model sees it: [CLS] … [SEP], truncated to the window.</summary>
    public int[] Tokenize(string text, bool query = false) =>
        _runtime.Value.Encode(query ? Model.QueryPrefix + text : text, Model.MaxTokens);

    /// <summary>Embeds documents (or queries, with the prefix); one L2-normalised vector per text, in order.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, bool query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var runtime = _runtime.Value;
        var count = texts.Count;
        var result = new float[count][];
        if (count == 0)
        {
            return result;
        }
        var encoded = new int[count][];
        var order = new int[count];
        var lengths = new int[count];
        for (var i = 0; i < count; i++)
        {
            var text = texts[i] ?? "";
            encoded[i] = runtime.Encode(query ? Model.QueryPrefix + text : text, Model.MaxTokens);
            order[i] = i;
            lengths[i] = encoded[i].Length;
        }
        // Sorted by length, so each run pads to nearly its own length; capped by tokens, not texts.
        Array.Sort(lengths, order);
        var start = 0;
        while (start < count)
        {
            ct.ThrowIfCancellationRequested();
            var end = start + 1;
            while (end < count && (end - start + 1) * lengths[end] <= _options.MaxBatchTokens)
            {
                end++;
            }
            runtime.Run(encoded, order, start, end, Model, result);
            start = end;
        }
        return result;
    }

    private TransformerRuntime Load()
    {
        try
        {
            return LoadCore();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LoadError = ex.Message;
            throw;
        }
    }

    private TransformerRuntime LoadCore()
    {
        var directory = _options.ModelDirectory ?? ModelPackage.DefaultDirectory;
        var dll = Path.Combine(directory, Model.AssemblyFile);
        var vocab = ModelPackage.ReadResource(dll, Model.ResourcePrefix + "vocab.txt", Model.VocabSha256);
        var onnx = ModelPackage.ReadResource(dll, Model.ResourcePrefix + "model.onnx", Model.ModelSha256);
        try
        {
            return new TransformerRuntime(onnx, vocab, _options);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new EmbeddingException($"the {Model.Name} model from '{dll}' could not be loaded by ONNX Runtime: {ex.Message}", isTransient: false, inner: ex);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        if (_runtime.IsValueCreated)
        {
            _runtime.Value.Dispose();
        }
    }
}
