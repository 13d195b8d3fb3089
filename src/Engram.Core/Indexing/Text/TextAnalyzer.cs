using System.Globalization;

namespace Engram.Core.Indexing.Text;

/// <summary>
/// Splits text into index terms for BM25: runs of letters and digits (Unicode-aware), lowercased,
/// English stop words dropped, and an optional light suffix stemmer. Scripts written without spaces
/// (<see cref="SegmentedScripts"/>: Chinese, Japanese, Korean, Thai, ...) have no words to split on: a
/// run of them becomes overlapping character bigrams ("設定ファイル" → 設定 定フ ファ ァイ イル), or the
/// character itself when the run is one character long, so a query matches any text containing it.
/// Terms are produced as spans over a caller-owned buffer or the text itself, so that indexing and
/// querying allocate nothing per token.
/// </summary>
public sealed class TextAnalyzer(bool removeStopWords = true, bool stem = true)
{
    /// <summary>Longest term kept; longer runs (hashes, base64) are cut to this length.</summary>
    public const int MaxTermLength = 64;

    public static TextAnalyzer Default { get; } = new();

    public bool RemoveStopWords { get; } = removeStopWords;

    public bool Stem { get; } = stem;

    /// <summary>Calls <paramref name="onTerm"/> for every term of <paramref name="text"/>, in order.</summary>
    public void Analyze<TState>(ReadOnlySpan<char> text, ref TState state, TermCallback<TState> onTerm)
    {
        Span<char> buffer = stackalloc char[MaxTermLength];
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && !IsTermChar(text[i]))
            {
                i++;
            }
            if (i < text.Length && SegmentedScripts.Contains(text[i]))
            {
                var start = i;
                while (i < text.Length && SegmentedScripts.Contains(text[i]))
                {
                    i++;
                }
                EmitBigrams(text[start..i], ref state, onTerm);
                continue;
            }
            var length = 0;
            while (i < text.Length && IsTermChar(text[i]) && !SegmentedScripts.Contains(text[i]))
            {
                if (length < MaxTermLength)
                {
                    buffer[length++] = char.ToLowerInvariant(text[i]);
                }
                i++;
            }
            // English possessive / contraction tails: "alice's" → "alice", "don't" → "don" + "t" (t is a stop word).
            if (length == 0)
            {
                continue;
            }
            ReadOnlySpan<char> term = buffer[..length];
            if (RemoveStopWords && StopWords.Contains(term))
            {
                continue;
            }
            if (Stem)
            {
                term = LightStemmer.Stem(buffer[..length]);
            }
            onTerm(term, ref state);
        }
    }

    /// <summary>The terms of <paramref name="text"/> as strings (tests and diagnostics; the index uses <see cref="Analyze{TState}"/>).</summary>
    public List<string> Terms(string text)
    {
        var terms = new List<string>();
        Analyze(text, ref terms, static (term, ref list) => list.Add(term.ToString()));
        return terms;
    }

    /// <summary>
    /// Overlapping bigrams of a run of a script without spaces. These scripts have no case and no
    /// English stop words or suffixes, so the bigrams go out as they stand.
    /// </summary>
    private static void EmitBigrams<TState>(ReadOnlySpan<char> run, ref TState state, TermCallback<TState> onTerm)
    {
        if (run.Length == 1)
        {
            onTerm(run, ref state);
            return;
        }
        for (var j = 0; j + 1 < run.Length; j++)
        {
            onTerm(run.Slice(j, 2), ref state);
        }
    }

    private static bool IsTermChar(char c) =>
        char.IsLetterOrDigit(c) || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark;
}

public delegate void TermCallback<TState>(ReadOnlySpan<char> term, ref TState state);
