using System.Buffers;
using System.Globalization;
using System.Text;

namespace Engram.Core.Embeddings;

/// <summary>What a <see cref="TextToken"/> is made of.</summary>
public enum TokenKind
{
    /// <summary>Letters, digits and marks, possibly joined by inner '-', '.', apostrophes, or ',' between digits ("long-distance", "don't", "3.5", "1,000").</summary>
    Word,

    /// <summary>One other visible character (punctuation, symbol, emoji): ",", "?", "%", "$".</summary>
    Symbol,
}

/// <summary>A token as a range of the original text (nothing is allocated).</summary>
public readonly record struct TextToken(int Start, int Length, TokenKind Kind);

/// <summary>
/// Splits text the way GloVe's corpus was split (a Penn-Treebank-like tokenizer): words with their inner hyphens,
/// periods and apostrophes kept together, every other visible character a token of its own, whitespace dropped.
/// Unicode-aware (letters, digits and combining marks of any script; surrogate pairs stay whole). Case is kept:
/// lowercasing, clitics ("n't", "'ll") and compound splitting happen at vocabulary lookup
/// (<see cref="BuiltinEmbeddingProvider"/>), because they depend on what the vocabulary holds.
/// </summary>
public static class WordTokenizer
{
    public static TokenEnumerator Tokenize(ReadOnlySpan<char> text) => new(text);

    /// <summary>The tokens as strings (allocates; for tests and diagnostics).</summary>
    public static List<string> TokenStrings(string text)
    {
        var list = new List<string>();
        foreach (var token in Tokenize(text))
        {
            list.Add(text.Substring(token.Start, token.Length));
        }
        return list;
    }

    /// <summary>True for apostrophe-like characters treated as "'": ' ’ ʼ ‘ and the prime.</summary>
    public static bool IsApostrophe(char c) => c is '\'' or '\u2019' or '\u02BC' or '\u2018' or '\u2032';

    internal static bool IsWordRune(Rune rune) =>
        Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => true,
            _ => false,
        };

    /// <summary>Enumerates tokens without allocating.</summary>
    public ref struct TokenEnumerator
    {
        private readonly ReadOnlySpan<char> _text;
        private int _position;

        internal TokenEnumerator(ReadOnlySpan<char> text)
        {
            _text = text;
            _position = 0;
            Current = default;
        }

        public TextToken Current { get; private set; }

        public readonly TokenEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            var text = _text;
            var i = _position;
            // Skip whitespace, controls, format characters (zero-width joiners, BOM...) and combining marks with no
            // letter before them (e.g. the emoji variation selector after "❤").
            while (i < text.Length)
            {
                var rune = RuneAt(text, i, out var width);
                if (!IsSkippable(rune) && !IsMark(rune))
                {
                    break;
                }
                i += width;
            }
            if (i >= text.Length)
            {
                _position = i;
                return false;
            }
            var start = i;
            var first = RuneAt(text, i, out var firstWidth);
            if (!IsWordRune(first))
            {
                _position = i + firstWidth;
                Current = new TextToken(start, firstWidth, TokenKind.Symbol);
                return true;
            }
            i += firstWidth;
            while (i < text.Length)
            {
                var rune = RuneAt(text, i, out var width);
                if (IsWordRune(rune))
                {
                    i += width;
                    continue;
                }
                // An inner connector joins two word characters: long-distance, don't, u.s, 3.5, 1,000.
                var c = text[i];
                if (i + 1 < text.Length && IsConnector(c))
                {
                    var next = RuneAt(text, i + 1, out _);
                    if (IsWordRune(next) && (c != ',' || (IsDigit(text[i - 1]) && IsDigit(text[i + 1]))))
                    {
                        i += 1;
                        continue;
                    }
                }
                break;
            }
            _position = i;
            Current = new TextToken(start, i - start, TokenKind.Word);
            return true;
        }

        private static bool IsMark(Rune rune) =>
            Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;

        private static bool IsConnector(char c) => c is '-' or '.' or ',' || IsApostrophe(c);

        private static bool IsDigit(char c) => c is >= '0' and <= '9';

        private static bool IsSkippable(Rune rune) =>
            Rune.IsWhiteSpace(rune) || Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format;

        private static Rune RuneAt(ReadOnlySpan<char> text, int index, out int width)
        {
            if (Rune.DecodeFromUtf16(text[index..], out var rune, out width) != OperationStatus.Done)
            {
                width = 1; // a lone surrogate: one replacement-character symbol
                return Rune.ReplacementChar;
            }
            return rune;
        }
    }
}
