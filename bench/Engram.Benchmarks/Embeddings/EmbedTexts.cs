using System.Text;
using System.Text.Json;
using Engram.Core.Embeddings.Transformer;

namespace Engram.Benchmarks.Embeddings;

/// <summary>
/// Real conversational text for the embedder benchmark: the turns of ../shared/data/locomo-dev (and lme-dev),
/// joined in order into texts of about a target token count. Falls back to a fixed synthetic text when the data
/// folder is absent, so the benchmark still runs (figures then say so).
/// </summary>
internal static class EmbedTexts
{
    public static string? DataRoot()
    {
        foreach (var candidate in new[] { Environment.GetEnvironmentVariable("ENGRAM_BENCH_DATA"), "../shared/data", "../../shared/data", "/work/shared/data" })
        {
            if (candidate is not null && Directory.Exists(Path.Combine(candidate, "locomo-dev")))
            {
                return Path.GetFullPath(candidate);
            }
        }
        return null;
    }

    /// <summary>Every turn's text of every conversation file in <paramref name="folder"/> (LoCoMo shape).</summary>
    public static IEnumerable<string> Turns(string folder)
    {
        foreach (var file in Directory.EnumerateFiles(folder, "*.json").Order(StringComparer.Ordinal))
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!property.Name.StartsWith("session_", StringComparison.Ordinal) || property.Value.ValueKind != JsonValueKind.Array)
                {
                    continue;
                }
                foreach (var turn in property.Value.EnumerateArray())
                {
                    if (turn.TryGetProperty("text", out var text) && text.GetString() is { Length: > 0 } value)
                    {
                        yield return turn.TryGetProperty("speaker", out var speaker) ? $"{speaker.GetString()}: {value}" : value;
                    }
                }
            }
        }
    }

    /// <summary><paramref name="count"/> texts of about <paramref name="tokens"/> tokens each (at most the model's window; turns joined, cut at a word).</summary>
    public static List<string> Make(TransformerEmbeddingProvider tokenizer, int count, int tokens)
    {
        var root = DataRoot();
        var turns = root is null ? Synthetic() : Turns(Path.Combine(root, "locomo-dev"));
        tokens = Math.Min(tokens, tokenizer.Model.MaxTokens); // MiniLM's window is 256: a longer text is cut to it anyway
        var result = new List<string>(count);
        var current = new StringBuilder();
        foreach (var turn in Cycle(turns))
        {
            foreach (var word in turn.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                current.Append(word).Append(' ');
                // Word pieces run about 1.3 per word: check the real count only near the target.
                if (current.Length > tokens * 3 && tokenizer.Tokenize(current.ToString()).Length >= tokens)
                {
                    result.Add(current.ToString().TrimEnd());
                    current.Clear();
                    if (result.Count == count)
                    {
                        return result;
                    }
                }
            }
        }
        return result;
    }

    private static IEnumerable<string> Cycle(IEnumerable<string> items)
    {
        var list = items.ToList();
        while (true)
        {
            foreach (var item in list)
            {
                yield return item;
            }
        }
    }

    private static IEnumerable<string> Synthetic() =>
    [
        "Caroline: I went to a support group for people going through the same thing last Tuesday and it helped a lot.",
        "Melanie: That sounds wonderful! I took the kids camping in the mountains over the weekend, we roasted marshmallows.",
        "Caroline: I have been thinking about adopting, maybe next year once the new job settles down a bit.",
    ];
}
