using System.Buffers;
using System.Numerics.Tensors;

namespace Engram.Core.Embeddings;

/// <summary>
/// The default, offline embedder: a weighted mean of GloVe word vectors (<see cref="WordVectorModel"/>) with SIF
/// weights from frequency rank, L2-normalized (common-component removal is an option, off by default: it measured worse).
/// </summary>
/// <remarks>
/// Text with no known word gives an all-zero vector (cosine 0 with everything), not a hashed fallback: a hashed
/// vector would be a random direction in GloVe's space and add noise to every ranking, while exact matches on
/// unknown tokens (ids, numbers, names) are the lexical index's job. Thread-safe; allocates only the result.
/// </remarks>
public sealed class BuiltinEmbeddingProvider : LocalEmbeddingProvider
{
    /// <summary>Zipf normalization: the harmonic number of GloVe 6B's 400k-word vocabulary (ln n + γ).</summary>
    private const double ZipfHarmonic = 12.899 + 0.5772;

    private const int StackLimit = 512;

    private static readonly Lazy<BuiltinEmbeddingProvider> DefaultInstance = new(() => new BuiltinEmbeddingProvider(WordVectorModel.Embedded));

    private readonly WordVectorModel _model;
    private readonly BuiltinEmbeddingOptions _options;
    private readonly float[] _weights;
    private readonly float[]? _commonComponent;
    private readonly int _not, _can, _will, _shall, _are, _am, _have, _would;

    public BuiltinEmbeddingProvider(WordVectorModel model, BuiltinEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? BuiltinEmbeddingOptions.Default;
        ModelId = model.ModelId + _options.Describe();
        _weights = new float[model.Count];
        for (var i = 0; i < _weights.Length; i++)
        {
            _weights[i] = _options.Weighting == WordWeighting.Mean ? 1f : (float)(_options.SifA / (_options.SifA + ZipfProbability(i)));
        }
        if (_options.RemoveCommonComponent)
        {
            _commonComponent = EstimateCommonComponent(model, _weights);
        }
        _not = model.IndexOf("not");
        _can = model.IndexOf("can");
        _will = model.IndexOf("will");
        _shall = model.IndexOf("shall");
        _are = model.IndexOf("are");
        _am = model.IndexOf("am");
        _have = model.IndexOf("have");
        _would = model.IndexOf("would");
    }

    /// <summary>The provider over the embedded model with default options; loaded once per process.</summary>
    public static BuiltinEmbeddingProvider Default => DefaultInstance.Value;

    public override string ModelId { get; }

    public override int Dimensions => _model.Dimensions;

    public WordVectorModel Model => _model;

    public BuiltinEmbeddingOptions Options => _options;

    /// <summary>The unit vector removed from every sentence vector, or null when disabled.</summary>
    public ReadOnlySpan<float> CommonComponent => _commonComponent;

    /// <summary>Zipf's law: p(word at 0-based rank i) = 1 / ((i + 1) H).</summary>
    public static double ZipfProbability(int rank) => 1.0 / ((rank + 1) * ZipfHarmonic);

    /// <summary>The weight of vocabulary word <paramref name="index"/>.</summary>
    public float Weight(int index) => _weights[index];

    /// <summary>Embeds synchronously (the work is CPU-only and short).</summary>
    public override float[] Embed(ReadOnlySpan<char> text)
    {
        var vector = new float[Dimensions];
        Embed(text, vector);
        return vector;
    }

    /// <summary>Writes the unit vector of <paramref name="text"/> (or zeros) into <paramref name="destination"/>.</summary>
    public void Embed(ReadOnlySpan<char> text, Span<float> destination)
    {
        destination = destination[..Dimensions];
        destination.Clear();
        int[]? rented = null;
        var indices = text.Length + 2 <= StackLimit ? stackalloc int[StackLimit] : (rented = ArrayPool<int>.Shared.Rent(text.Length + 2));
        try
        {
            var count = CollectWords(text, indices);
            if (count == 0)
            {
                return;
            }
            for (var i = 0; i < count; i++)
            {
                _model.AddScaled(indices[i], _weights[indices[i]], destination);
            }
            if (_commonComponent is not null)
            {
                var projection = TensorPrimitives.Dot(destination, _commonComponent);
                TensorPrimitives.MultiplyAdd(_commonComponent, -projection, destination, destination);
            }
            var norm = TensorPrimitives.Norm(destination);
            if (norm > 1e-12f)
            {
                TensorPrimitives.Divide(destination, norm, destination);
            }
            else
            {
                destination.Clear();
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<int>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The vocabulary words <paramref name="text"/> contributes, in order (allocates; for tests and explain).</summary>
    public List<string> Words(string text)
    {
        var indices = new int[text.Length + 2];
        var count = CollectWords(text, indices);
        return [.. indices.AsSpan(0, count).ToArray().Select(_model.Word)];
    }

    /// <summary>Tokenizes and resolves tokens to vocabulary indices; returns how many were written (at most text length + 2).</summary>
    private int CollectWords(ReadOnlySpan<char> text, Span<int> indices)
    {
        var count = 0;
        Span<char> lower = stackalloc char[StackLimit];
        foreach (var token in WordTokenizer.Tokenize(text))
        {
            var raw = text.Slice(token.Start, token.Length);
            if (token.Kind == TokenKind.Symbol)
            {
                if (_options.IncludeSymbols && raw.Length <= 2)
                {
                    Add(indices, ref count, _model.IndexOf(Lowercase(raw, lower)));
                }
                continue;
            }
            var word = raw.Length <= StackLimit ? Lowercase(raw, lower) : [];
            if (word.IsEmpty)
            {
                continue;
            }
            ResolveWord(word, indices, ref count);
        }
        return count;
    }

    private void ResolveWord(ReadOnlySpan<char> word, Span<int> indices, ref int count)
    {
        var index = Lookup(word);
        if (index >= 0)
        {
            indices[count++] = index;
            return;
        }
        var apostrophe = word.LastIndexOf('\'');
        if (apostrophe > 0)
        {
            var suffix = word[(apostrophe + 1)..];
            var stem = word[..apostrophe];
            int clitic;
            // GloVe's corpus split clitics off (do n't, i 'm); this vocabulary dropped those tokens, so map them to their words.
            if (suffix is "t" && stem.EndsWith('n') && stem.Length > 1)
            {
                stem = stem[..^1];
                clitic = _not;
                stem = stem switch
                {
                    "ca" => "can",
                    "wo" => "will",
                    "sha" => "shall",
                    _ => stem,
                };
            }
            else
            {
                clitic = suffix switch
                {
                    "s" => -2, // possessive or "is": no word of its own
                    "re" => _are,
                    "m" => _am,
                    "ve" => _have,
                    "ll" => _will,
                    "d" => _would,
                    _ => -1,
                };
            }
            if (clitic != -1)
            {
                ResolveCompound(stem, indices, ref count);
                Add(indices, ref count, clitic);
                return;
            }
        }
        ResolveCompound(word, indices, ref count);
    }

    /// <summary>The whole word if known, else its parts between '-', '.', ',' and apostrophes.</summary>
    private void ResolveCompound(ReadOnlySpan<char> word, Span<int> indices, ref int count)
    {
        var index = Lookup(word);
        if (index >= 0)
        {
            indices[count++] = index;
            return;
        }
        if (word.IndexOfAny("-.,'") < 0)
        {
            return; // a single unknown word
        }
        while (!word.IsEmpty)
        {
            var cut = word.IndexOfAny("-.,'");
            var part = cut < 0 ? word : word[..cut];
            if (!part.IsEmpty)
            {
                Add(indices, ref count, Lookup(part));
            }
            if (cut < 0)
            {
                break;
            }
            word = word[(cut + 1)..];
        }
    }

    private int Lookup(ReadOnlySpan<char> word) => word.Length <= _model.LongestWord ? _model.IndexOf(word) : -1;

    private static void Add(Span<int> indices, ref int count, int index)
    {
        if (index >= 0)
        {
            indices[count++] = index;
        }
    }

    private static ReadOnlySpan<char> Lowercase(ReadOnlySpan<char> raw, Span<char> buffer)
    {
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            buffer[i] = WordTokenizer.IsApostrophe(c) ? '\'' : char.ToLowerInvariant(c);
        }
        return buffer[..raw.Length];
    }

    /// <summary>
    /// The direction shared by all sentences: the expected weighted sentence vector, Σ p(w) weight(w) v(w) over the
    /// vocabulary with p(w) from Zipf, normalized. (SIF removes the first singular vector of a corpus's sentence
    /// vectors; for a corpus drawn from the word distribution that vector is dominated by this mean.)
    /// </summary>
    private static float[] EstimateCommonComponent(WordVectorModel model, float[] weights)
    {
        var sum = new float[model.Dimensions];
        for (var i = 0; i < model.Count; i++)
        {
            model.AddScaled(i, (float)ZipfProbability(i) * weights[i], sum);
        }
        var norm = TensorPrimitives.Norm(sum);
        TensorPrimitives.Divide(sum, norm, sum);
        return sum;
    }
}
