using System.Numerics.Tensors;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace Engram.Core.Embeddings.Transformer;

/// <summary>
/// A sentence-embedding transformer (BERT-style encoder as ONNX) run in process by ONNX Runtime on the CPU.
/// Texts are tokenized with the model's WordPiece vocabulary (Microsoft.ML.Tokenizers, after NFD with accents
/// stripped, as uncased BERT does), truncated to the model's window keeping [CLS] and [SEP], sorted by length
/// and run in batches capped by tokens (less padding, bounded memory), pooled the model's way and L2-normalised.
/// Queries get the model's query prefix (<see cref="EmbedQueryAsync"/>). Nothing is loaded until the first
/// embed, so a server or an MCP handshake never waits for the ~3 s it takes to load the model.
/// </summary>
public sealed class TransformerEmbeddingProvider : IEmbeddingProvider, IDisposable
{
    private readonly TransformerOptions _options;
    private readonly Lazy<Runtime> _runtime;
    private bool _disposed;

    public TransformerEmbeddingProvider(TransformerModel model, TransformerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _options = options ?? new TransformerOptions();
        _runtime = new Lazy<Runtime>(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public TransformerModel Model { get; }

    public string ModelId => Model.ModelId;

    public int Dimensions => Model.Dimensions;

    /// <summary>True once the model has been loaded (by the first embed or <see cref="WarmUp"/>).</summary>
    public bool IsLoaded => _runtime.IsValueCreated;

    /// <summary>Loads the model now (otherwise the first embed does).</summary>
    public void WarmUp() => _ = _runtime.Value;

    public ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default) =>
        ValueTask.FromResult(Embed([text], query: false, ct)[0]);

    public ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default) =>
        ValueTask.FromResult(Embed([text], query: true, ct)[0]);

    public ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default) =>
        ValueTask.FromResult(Embed(texts, query: false, ct));

    /// <summary>Token ids of <paramref name="text"/> as the model sees it: [CLS] … [SEP], truncated to the window.</summary>
    public int[] Tokenize(string text, bool query = false)
    {
        var runtime = _runtime.Value;
        return runtime.Encode(query ? Model.QueryPrefix + text : text, Model.MaxTokens);
    }

    /// <summary>Embeds documents (or queries, with the prefix); one L2-normalised vector per text, in order.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, bool query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var runtime = _runtime.Value;
        var result = new float[texts.Count][];
        if (texts.Count == 0)
        {
            return result;
        }
        var encoded = new int[texts.Count][];
        for (var i = 0; i < texts.Count; i++)
        {
            encoded[i] = runtime.Encode(query ? Model.QueryPrefix + texts[i] : texts[i] ?? "", Model.MaxTokens);
        }
        // Sorted by length, so each batch pads to nearly its own length; capped by tokens, not texts.
        var order = Enumerable.Range(0, texts.Count).OrderBy(i => encoded[i].Length).ToArray();
        var start = 0;
        while (start < order.Length)
        {
            ct.ThrowIfCancellationRequested();
            var end = start + 1;
            while (end < order.Length && (end - start + 1) * encoded[order[end]].Length <= _options.MaxBatchTokens)
            {
                end++;
            }
            var batch = order[start..end];
            var vectors = runtime.Run(batch.Select(i => encoded[i]).ToArray(), Model.Pooling, Model.Dimensions);
            for (var b = 0; b < batch.Length; b++)
            {
                result[batch[b]] = vectors[b];
            }
            start = end;
        }
        return result;
    }

    private Runtime Load()
    {
        var directory = _options.ModelDirectory ?? ModelPackage.DefaultDirectory;
        var dll = Path.Combine(directory, Model.AssemblyFile);
        var vocab = ModelPackage.ReadResource(dll, Model.ResourcePrefix + "vocab.txt", Model.VocabSha256);
        var onnx = ModelPackage.ReadResource(dll, Model.ResourcePrefix + "model.onnx", Model.ModelSha256);
        var threads = _options.Threads > 0 ? _options.Threads : Environment.ProcessorCount;
        return new Runtime(onnx, vocab, threads);
    }

    public void Dispose()
    {
        _disposed = true;
        if (_runtime.IsValueCreated)
        {
            _runtime.Value.Dispose();
        }
    }

    /// <summary>The loaded tokenizer and ONNX session.</summary>
    private sealed class Runtime : IDisposable
    {
        private readonly BertTokenizer _tokenizer;
        private readonly InferenceSession _session;
        private readonly string _output;

        public Runtime(byte[] onnx, byte[] vocab, int threads)
        {
            using (var stream = new MemoryStream(vocab, writable: false))
            {
                _tokenizer = BertTokenizer.Create(stream, new BertOptions
                {
                    LowerCaseBeforeTokenization = true,
                    RemoveNonSpacingMarks = true,
                    IndividuallyTokenizeCjk = true,
                    ApplyBasicTokenization = true,
                });
            }
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            };
            _session = new InferenceSession(onnx, options);
            _output = _session.OutputNames[0];
        }

        public int[] Encode(string text, int maxTokens)
        {
            // NFD first: accents become separate marks, which the tokenizer strips (uncased BERT's normalisation).
            var normalized = text.IsNormalized(NormalizationForm.FormD) ? text : text.Normalize(NormalizationForm.FormD);
            var ids = _tokenizer.EncodeToIds(normalized, maxTokens - 2, addSpecialTokens: false, out _, out _);
            var result = new int[ids.Count + 2];
            result[0] = _tokenizer.ClassificationTokenId;
            for (var i = 0; i < ids.Count; i++)
            {
                result[i + 1] = ids[i];
            }
            result[^1] = _tokenizer.SeparatorTokenId;
            return result;
        }

        public float[][] Run(int[][] batch, TokenPooling pooling, int dimensions)
        {
            var rows = batch.Length;
            var width = batch.Max(ids => ids.Length);
            var inputIds = new long[rows * width];
            var mask = new long[rows * width];
            var types = new long[rows * width];
            for (var r = 0; r < rows; r++)
            {
                var ids = batch[r];
                for (var t = 0; t < ids.Length; t++)
                {
                    inputIds[(r * width) + t] = ids[t];
                    mask[(r * width) + t] = 1;
                }
            }
            long[] shape = [rows, width];
            using var idsValue = OrtValue.CreateTensorValueFromMemory(inputIds, shape);
            using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
            var inputs = new Dictionary<string, OrtValue>(3, StringComparer.Ordinal);
            foreach (var name in _session.InputNames)
            {
                inputs[name] = name.Contains("mask", StringComparison.Ordinal) ? maskValue
                    : name.Contains("type", StringComparison.Ordinal) ? typesValue
                    : idsValue;
            }
            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, inputs, [_output]);
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            var result = new float[rows][];
            for (var r = 0; r < rows; r++)
            {
                var vector = new float[dimensions];
                var row = hidden.Slice(r * width * dimensions, width * dimensions);
                if (pooling == TokenPooling.Cls)
                {
                    row[..dimensions].CopyTo(vector);
                }
                else
                {
                    var length = batch[r].Length;
                    for (var t = 0; t < length; t++)
                    {
                        TensorPrimitives.Add(vector, row.Slice(t * dimensions, dimensions), vector);
                    }
                    TensorPrimitives.Divide(vector, length, vector);
                }
                var norm = TensorPrimitives.Norm(vector);
                if (norm > 0)
                {
                    TensorPrimitives.Divide(vector, norm, vector);
                }
                result[r] = vector;
            }
            return result;
        }

        public void Dispose() => _session.Dispose();
    }
}
