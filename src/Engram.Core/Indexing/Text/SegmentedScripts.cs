namespace Engram.Core.Indexing.Text;

/// <summary>
/// Scripts written without spaces between words, which <see cref="TextAnalyzer"/> indexes as overlapping
/// character bigrams instead of whitespace-delimited words: CJK (Han, Hiragana, Katakana, Hangul, the
/// iteration and prolonged-sound marks) and the Southeast Asian scripts Thai, Lao, Khmer and Myanmar
/// (whose combining vowel and tone marks sit inside the same blocks, so they are kept in the run).
/// Characters outside the Basic Multilingual Plane (CJK extension B and beyond) are not recognised.
/// </summary>
internal static class SegmentedScripts
{
    public static bool Contains(char c) => c switch
    {
        < '\u0E00' => false,
        <= '\u0EFF' => true, // Thai, Lao
        >= '\u1000' and <= '\u109F' => true, // Myanmar
        >= '\u1100' and <= '\u11FF' => true, // Hangul Jamo
        >= '\u1780' and <= '\u17FF' => true, // Khmer
        '\u3005' or '\u3006' => true, // 々 〆
        >= '\u3040' and <= '\u30FF' => true, // Hiragana, Katakana (with ー)
        >= '\u3130' and <= '\u318F' => true, // Hangul compatibility Jamo
        >= '\u31F0' and <= '\u31FF' => true, // Katakana phonetic extensions
        >= '\u3400' and <= '\u4DBF' => true, // CJK extension A
        >= '\u4E00' and <= '\u9FFF' => true, // CJK unified ideographs
        >= '\uAC00' and <= '\uD7AF' => true, // Hangul syllables
        >= '\uF900' and <= '\uFAFF' => true, // CJK compatibility ideographs
        >= '\uFF66' and <= '\uFF9F' => true, // halfwidth Katakana
        _ => false,
    };
}
