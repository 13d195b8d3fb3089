using System.Buffers;
using System.Numerics.Tensors;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace Engram.Core.Embeddings.Transformer;

/// <summary>
/// A loaded model: the WordPiece tokenizer over its vocabulary and the ONNX Runtime session. Thread-safe:
/// ORT sessions take concurrent runs, so a query never queues behind a document batch (it runs beside it).
/// Input buffers come from a pool and are handed to ORT without copying.
/// </summary>
internal sealed class TransformerRuntime : IDisposable
{
    private readonly BertTokenizer _tokenizer;
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly InputKind[] _inputKinds;
    private readonly string[] _outputNames;

    public TransformerRuntime(byte[] onnx, byte[] vocab, TransformerOptions options)
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
        using var sessionOptions = CreateSessionOptions(options);
        _session = new InferenceSession(onnx, sessionOptions);
        _inputNames = [.. _session.InputNames];
        _inputKinds = Array.ConvertAll(_inputNames, KindOf);
        _outputNames = [_session.OutputNames[0]];
    }

    private enum InputKind
    {
        Ids,
        Mask,
        Types,
    }

    /// <summary>The session settings Engram runs a model with (the benchmark uses the same).</summary>
    public static SessionOptions CreateSessionOptions(TransformerOptions options)
    {
        var session = new SessionOptions
        {
            IntraOpNumThreads = options.EffectiveThreads,
            InterOpNumThreads = 1,
            GraphOptimizationLevel = options.GraphOptimization,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        // Spinning keeps the pool's threads busy-waiting between parallel sections; between a server's
        // requests that is CPU burned for nothing (bench/README.md, 2026-12-02, shows it buys little).
        session.AddSessionConfigEntry("session.intra_op.allow_spinning", options.AllowSpinning ? "1" : "0");
        return session;
    }

    /// <summary>Token ids of <paramref name="text"/>: [CLS], at most <paramref name="maxTokens"/> − 2 word pieces, [SEP].</summary>
    public int[] Encode(string text, int maxTokens)
    {
        // NFD first: accents become separate marks, which the tokenizer strips (uncased BERT's normalisation).
        var normalized = SpacesForWhitespace(Common.UnicodeText.Normalize(text, NormalizationForm.FormD));
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

    /// <summary>
    /// Every whitespace character as a plain space. The tokenizer drops control characters, newlines and tabs
    /// among them, without splitting there: "milk\nand" would become "milk" "##and".
    /// </summary>
    internal static string SpacesForWhitespace(string text)
    {
        var span = text.AsSpan();
        var first = -1;
        for (var i = 0; i < span.Length; i++)
        {
            if (span[i] != ' ' && char.IsWhiteSpace(span[i]))
            {
                first = i;
                break;
            }
        }
        if (first < 0)
        {
            return text;
        }
        return string.Create(text.Length, (text, first), static (destination, state) =>
        {
            state.text.AsSpan().CopyTo(destination);
            for (var i = state.first; i < destination.Length; i++)
            {
                if (char.IsWhiteSpace(destination[i]))
                {
                    destination[i] = ' ';
                }
            }
        });
    }

    /// <summary>
    /// Runs texts <paramref name="order"/>[<paramref name="start"/>..<paramref name="end"/>) of
    /// <paramref name="encoded"/> as one padded batch and writes their pooled, L2-normalised vectors to
    /// <paramref name="result"/> at the same positions.
    /// </summary>
    public void Run(int[][] encoded, int[] order, int start, int end, TransformerModel model, float[][] result)
    {
        var rows = end - start;
        var width = 0;
        for (var i = start; i < end; i++)
        {
            width = Math.Max(width, encoded[order[i]].Length);
        }
        var size = rows * width;
        var ids = ArrayPool<long>.Shared.Rent(size);
        var mask = ArrayPool<long>.Shared.Rent(size);
        var types = ArrayPool<long>.Shared.Rent(size);
        try
        {
            Array.Clear(ids, 0, size);
            Array.Clear(mask, 0, size);
            Array.Clear(types, 0, size);
            for (var r = 0; r < rows; r++)
            {
                var tokens = encoded[order[start + r]];
                var row = r * width;
                for (var t = 0; t < tokens.Length; t++)
                {
                    ids[row + t] = tokens[t];
                }
                mask.AsSpan(row, tokens.Length).Fill(1);
            }
            long[] shape = [rows, width];
            using var idsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, ids.AsMemory(0, size), shape);
            using var maskValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, mask.AsMemory(0, size), shape);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, types.AsMemory(0, size), shape);
            var inputs = new OrtValue[_inputKinds.Length];
            for (var i = 0; i < inputs.Length; i++)
            {
                inputs[i] = _inputKinds[i] switch
                {
                    InputKind.Mask => maskValue,
                    InputKind.Types => typesValue,
                    _ => idsValue,
                };
            }
            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, _inputNames, inputs, _outputNames);
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            var dimensions = model.Dimensions;
            for (var r = 0; r < rows; r++)
            {
                var index = order[start + r];
                result[index] = Pool(hidden.Slice(r * width * dimensions, width * dimensions), encoded[index].Length, model.Pooling, dimensions);
            }
        }
        finally
        {
            ArrayPool<long>.Shared.Return(ids);
            ArrayPool<long>.Shared.Return(mask);
            ArrayPool<long>.Shared.Return(types);
        }
    }

    private static float[] Pool(ReadOnlySpan<float> tokens, int length, TokenPooling pooling, int dimensions)
    {
        var vector = new float[dimensions];
        if (pooling == TokenPooling.Cls)
        {
            tokens[..dimensions].CopyTo(vector);
        }
        else
        {
            for (var t = 0; t < length; t++)
            {
                TensorPrimitives.Add(vector, tokens.Slice(t * dimensions, dimensions), vector);
            }
            TensorPrimitives.Divide(vector, length, vector);
        }
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
        return vector;
    }

    private static InputKind KindOf(string name) =>
        name.Contains("mask", StringComparison.OrdinalIgnoreCase) ? InputKind.Mask
        : name.Contains("type", StringComparison.OrdinalIgnoreCase) ? InputKind.Types
        : InputKind.Ids;

    public void Dispose() => _session.Dispose();
}
