namespace Engram.Core.Indexing.Text;

/// <summary>Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), with a bound.</summary>
internal static class EditDistance
{
    /// <summary>
    /// The distance between <paramref name="a"/> and <paramref name="b"/> when it is at most
    /// <paramref name="max"/>, otherwise <c>max + 1</c>. Both must be at most <see cref="TextAnalyzer.MaxTermLength"/> long.
    /// </summary>
    public static int Bounded(ReadOnlySpan<char> a, ReadOnlySpan<char> b, int max)
    {
        if (Math.Abs(a.Length - b.Length) > max)
        {
            return max + 1;
        }
        var width = b.Length + 1;
        Span<int> twoBack = stackalloc int[width];
        Span<int> previous = stackalloc int[width];
        Span<int> current = stackalloc int[width];
        for (var j = 0; j < width; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            var rowMin = i;
            for (var j = 1; j < width; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                var best = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    best = Math.Min(best, twoBack[j - 2] + 1);
                }
                current[j] = best;
                rowMin = Math.Min(rowMin, best);
            }
            if (rowMin > max)
            {
                return max + 1;
            }
            var spare = twoBack;
            twoBack = previous;
            previous = current;
            current = spare;
        }
        return Math.Min(previous[b.Length], max + 1);
    }
}
