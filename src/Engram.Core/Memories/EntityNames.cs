using System.Text;

namespace Engram.Core.Memories;

/// <summary>
/// How entity names are compared. A memory keeps the spelling it was given (trimmed, NFC); filters,
/// the store's <c>memory_entities</c> index and the search index compare the <see cref="Key"/>,
/// so "Alice", "alice" and "ALICE" name one entity. The same fold is applied everywhere a name is
/// matched, so a listing and a search with <c>entity=</c> always agree.
/// </summary>
public static class EntityNames
{
    /// <summary>Trimmed and in Unicode NFC: the spelling a memory stores.</summary>
    public static string Normalize(string name)
    {
        var trimmed = name.Trim();
        return Common.UnicodeText.Normalize(trimmed, NormalizationForm.FormC);
    }

    /// <summary>
    /// The case-folded form of a (raw or normalised) name: what every comparison uses. Invisible characters are folded
    /// away first (<see cref="Common.UnicodeText.FoldInvisible"/>), as the graph folds its names, so "Al\u200Bice" is
    /// "alice" too; a memory stored before its names were folded on the way in is indexed so since schema 17 (SQLite) and
    /// 11 (PostgreSQL).
    /// </summary>
    public static string Key(string name) => Normalize(Common.UnicodeText.FoldInvisible(name)).ToLowerInvariant();
}
