using System.Numerics.Tensors;

namespace Engram.Core.Embeddings;

/// <summary>
/// A deterministic embedder for tests: feature hashing of lowercased word tokens (<see cref="WordTokenizer"/>,
/// symbols ignored) into <see cref="Dimensions"/> buckets with a ±1 sign per token, L2-normalized. Texts sharing
/// words are similar; synonyms are not. The same text gives the same vector on every machine and process
/// (FNV-1a, not string.GetHashCode). Text with no word gives zeros. Thread-safe.
/// </summary>
public sealed class HashEmbeddingProvider : LocalEmbeddingProvider
{
    public HashEmbeddingProvider(int dimensions = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 2);
        Dimensions = dimensions;
        ModelId = $"hash-fnv1a-{dimensions}d-v1";
    }

    public override string ModelId { get; }

    public override int Dimensions { get; }

    public override float[] Embed(ReadOnlySpan<char> text)
    {
        var vector = new float[Dimensions];
        foreach (var token in WordTokenizer.Tokenize(text))
        {
            if (token.Kind != TokenKind.Word)
            {
                continue;
            }
            var hash = Fnv1a(text.Slice(token.Start, token.Length));
            var bucket = (int)(hash % (uint)Dimensions);
            vector[bucket] += (hash >> 63) == 0 ? 1f : -1f;
        }
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
        return vector;
    }

    /// <summary>64-bit FNV-1a over the lowercased UTF-16 code units.</summary>
    private static ulong Fnv1a(ReadOnlySpan<char> token)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in token)
        {
            var lower = WordTokenizer.IsApostrophe(c) ? '\'' : char.ToLowerInvariant(c);
            hash = (hash ^ (byte)lower) * 1099511628211UL;
            hash = (hash ^ (byte)(lower >> 8)) * 1099511628211UL;
        }
        return hash;
    }
}
