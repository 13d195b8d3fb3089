using Engram.Core.Embeddings;
using Engram.Core.Indexing.Text;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// Real English content words in frequency order (the built-in GloVe model's vocabulary, most frequent
/// first, stop words and non-letters dropped), sampled with a Zipf-Mandelbrot law p(r) ∝ 1/(r + q).
/// The offset q flattens the head so the most common content word lands in a few percent of memories,
/// as in real notes, instead of in most of them; the tail stays long, so posting lists range from
/// tens of thousands of documents down to one.
/// </summary>
public sealed class Vocabulary
{
    private readonly string[] _words;
    private readonly double[] _cumulative;

    private Vocabulary(string[] words, double offset)
    {
        _words = words;
        _cumulative = new double[words.Length];
        var sum = 0.0;
        for (var r = 0; r < words.Length; r++)
        {
            sum += 1.0 / (r + 1 + offset);
            _cumulative[r] = sum;
        }
    }

    public int Count => _words.Length;

    public string this[int rank] => _words[rank];

    /// <summary>The first <paramref name="size"/> content words of the built-in model's vocabulary.</summary>
    public static Vocabulary Load(int size = 30_000, double offset = 20)
    {
        var model = WordVectorModel.Embedded;
        var words = new List<string>(size);
        for (var i = 0; i < model.Count && words.Count < size; i++)
        {
            var word = model.Word(i);
            if (word.Length is >= 3 and <= 14 && word.All(char.IsAsciiLetterLower) && !StopWords.Contains(word))
            {
                words.Add(word);
            }
        }
        return new Vocabulary([.. words], offset);
    }

    /// <summary>A word drawn with its Zipf-Mandelbrot frequency.</summary>
    public string Sample(ref SplitMix random)
    {
        var target = random.NextDouble() * _cumulative[^1];
        var rank = Array.BinarySearch(_cumulative, target);
        return _words[rank < 0 ? Math.Min(~rank, _words.Length - 1) : rank];
    }
}
