namespace Engram.Core.Indexing.Text;

/// <summary>
/// A deliberately light English suffix stripper (plurals, -ing, -ed, -ly), in place on a span. It
/// conflates "dogs"/"dog" and "painting"/"paint" without the over-stemming of a full Porter stemmer;
/// the LoCoMo benchmark decides whether it stays on.
/// </summary>
internal static class LightStemmer
{
    public static ReadOnlySpan<char> Stem(Span<char> term)
    {
        var n = term.Length;
        if (n <= 3 || !char.IsAsciiLetterLower(term[n - 1]))
        {
            return term;
        }
        if (EndsWith(term, "ies") && n > 4)
        {
            term[n - 3] = 'y';
            return term[..(n - 2)];
        }
        if (EndsWith(term, "sses"))
        {
            return term[..(n - 2)];
        }
        if (term[n - 1] == 's' && term[n - 2] is not ('s' or 'u' or 'i'))
        {
            return term[..(n - 1)];
        }
        if (EndsWith(term, "ing") && n > 5 && HasVowel(term[..(n - 3)]))
        {
            return UndoubleConsonant(term[..(n - 3)]);
        }
        if (EndsWith(term, "ed") && n > 4 && HasVowel(term[..(n - 2)]))
        {
            return UndoubleConsonant(term[..(n - 2)]);
        }
        if (EndsWith(term, "ly") && n > 5)
        {
            return term[..(n - 2)];
        }
        return term;
    }

    private static bool EndsWith(ReadOnlySpan<char> term, string suffix) => term.EndsWith(suffix.AsSpan(), StringComparison.Ordinal);

    private static bool HasVowel(ReadOnlySpan<char> stem) => stem.IndexOfAny("aeiouy") >= 0;

    // "running" → "runn" → "run"; keep "ll", "ss", "zz" ("falling" → "fall").
    private static ReadOnlySpan<char> UndoubleConsonant(ReadOnlySpan<char> stem)
    {
        var n = stem.Length;
        return n >= 3 && stem[n - 1] == stem[n - 2] && stem[n - 1] is not ('l' or 's' or 'z') && "aeiou".IndexOf(stem[n - 1]) < 0
            ? stem[..(n - 1)]
            : stem;
    }
}
